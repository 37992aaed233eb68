mod client;
mod fake_provider;
