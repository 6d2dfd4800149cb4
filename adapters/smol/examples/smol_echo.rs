//! Connects to the URL given on the command line and echoes stdin: each line becomes a text message
//! (queued across outages), each message received is printed, connection events go to stderr.
//!
//! `cargo run -p tether-smol --example smol_echo -- ws://127.0.0.1:9001/`

use futures::{AsyncBufReadExt, StreamExt};
use tether_smol::{ClientBuilder, Event};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let url = std::env::args().nth(1).ok_or("usage: echo URL")?;
        let (client, mut events) = tether_smol::connect(ClientBuilder::new(url).build()?)?;
        let printer = smol::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Event::Message(m) => println!("{}", m.as_text().unwrap_or("<binary>")),
                    Event::StateChanged { to, cause, .. } => eprintln!("[{to:?}] {cause}"),
                    Event::Failed(why) => eprintln!("failed: {why}"),
                    _ => {}
                }
            }
        });
        let mut lines = futures::io::BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
        while let Some(line) = lines.next().await {
            client.send(line?).await?;
        }
        client.close(1000, "stdin closed").await?;
        printer.await;
        Ok(())
    })
}
