//! Writes a synthetic topology of SEEDS seeds and CLUSTERS user clusters to stdout:
//!
//! ```text
//! cargo run --example generate -- 20 10000 > large.yaml
//! kkp plan -f large.yaml
//! ```

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("SEEDS and CLUSTERS are numbers")).collect();
    let [seeds, clusters] = args[..] else {
        eprintln!("usage: generate SEEDS CLUSTERS");
        std::process::exit(2);
    };
    let spec = kkp::topology::generate::Spec { seeds, clusters, ..Default::default() };
    print!("{}", kkp::topology::generate::generate(&spec));
}
