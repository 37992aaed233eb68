mod client;
mod fake_provider;
mod sandbox;
