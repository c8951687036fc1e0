mod cli;
mod pg;
