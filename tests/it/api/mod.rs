mod browser;
mod gates;
mod guards;
mod http;
mod page;
mod signoff;
