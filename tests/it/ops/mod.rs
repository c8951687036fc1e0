mod compose;
mod dashboards;
mod prometheus;
