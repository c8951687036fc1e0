mod browser;
mod contract;
mod gates;
mod guards;
mod http;
mod page;
mod signoff;
