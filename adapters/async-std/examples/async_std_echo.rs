//! Connects to the URL given on the command line and echoes stdin: each line becomes a text message
//! (queued across outages), each message received is printed, connection events go to stderr.
//!
//! `cargo run -p tether-async-std --example async_std_echo -- ws://127.0.0.1:9001/`

use async_std::io::BufReadExt;
use futures::StreamExt;
use tether_async_std::{ClientBuilder, Event};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    async_std::task::block_on(async {
        let url = std::env::args().nth(1).ok_or("usage: echo URL")?;
        let (client, mut events) = tether_async_std::connect(ClientBuilder::new(url).build()?)?;
        let printer = async_std::task::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Event::Message(m) => println!("{}", m.as_text().unwrap_or("<binary>")),
                    Event::StateChanged { to, cause, .. } => eprintln!("[{to:?}] {cause}"),
                    Event::Failed(why) => eprintln!("failed: {why}"),
                    _ => {}
                }
            }
        });
        let mut lines = async_std::io::BufReader::new(async_std::io::stdin()).lines();
        while let Some(line) = lines.next().await {
            client.send(line?).await?;
        }
        client.close(1000, "stdin closed").await?;
        printer.await;
        Ok(())
    })
}
