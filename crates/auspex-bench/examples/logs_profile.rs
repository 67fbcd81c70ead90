//! Development aid: time the phases of `logs parse` on a file.
//! `cargo run --release -p auspex-bench --example logs_profile -- FILE FORMAT`

use std::time::Instant;

use auspex_bench::logs_pipeline::{InputFormat, lines};
use auspex_logs::{Miner, MinerConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(fmt)) = (args.next(), args.next()) else {
        eprintln!("usage: logs_profile FILE FORMAT");
        return;
    };
    let t = Instant::now();
    let data = std::fs::read(&path).unwrap_or_default();
    let ls: Vec<&[u8]> = lines(&data).collect();
    let text: Vec<&str> = ls.iter().map(|l| std::str::from_utf8(l).unwrap_or("")).collect();
    println!("read+split+utf8: {:?}", t.elapsed());
    let f = InputFormat::parse(&fmt).unwrap_or(InputFormat::Raw);
    let t = Instant::now();
    let msgs: Vec<String> = text.iter().map(|l| f.message(l).0.into_owned()).collect();
    println!("messages: {:?}", t.elapsed());
    let mut m = Miner::new(MinerConfig::default());
    let t = Instant::now();
    let mut sum = 0u64;
    for msg in &msgs {
        sum += u64::from(m.add_id(msg).0);
    }
    println!("mining: {:?} ({sum})", t.elapsed());
}
