//! From a checkpoint file to a circuit and its faithfulness:
//! `cargo run --example circuit -- MODEL.safetensors [TASK] [DATA_DIR] [ACTIVATION]`
//! (TASK: circle, line or pairs such as 7:5; DATA_DIR: fixtures/mnist).

use modcirc::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(model) = args.first() else {
        eprintln!("usage: cargo run --example circuit -- MODEL.safetensors [TASK] [DATA_DIR] [ACTIVATION]");
        std::process::exit(2);
    };
    let task = Task::parse(args.get(1).map_or("circle", String::as_str))?;
    let data = args.get(2).map_or("fixtures/mnist", String::as_str);

    // A checkpoint of `cargo xtask train` records its activation; a PyTorch
    // stack of nn.Linear does not: name it as the third argument.
    let activation = args.get(3).map(|a| a.parse::<Activation>()).transpose()?;
    let ck = load_model(Path::new(model), activation)?;
    let mnist = Mnist::load(data, ChecksumPolicy::Auto)?;
    let (pairs, images) = TaskImages::from_task(&mnist.test, &task, 0)?;
    let report = discover(&ck.model, &images, &DiscoveryConfig::default(), &mut |_| {})?;
    let s = &report.summary;
    println!("{} pairs of {task}; circuit: {}", pairs.len(), report.selection.rule);
    println!(
        "logit difference {:.4} [{:.4}, {:.4}] (lower is better)",
        s.logit_difference.mean, s.logit_difference.lo, s.logit_difference.hi
    );
    println!("accuracy {:.3}, the model's {:.3}", s.accuracy.mean, s.model_accuracy.mean);
    let sweep = PatchingSweep::new(&ck.model, &images)?;
    let circuit = Circuit::new(&ck.model, report.selection.nodes.clone(), report.config.eps)?;
    println!("faithfulness on all pairs {:.3}, sparsity {:.4}", circuit.faithfulness(&sweep)?, circuit.sparsity());
    match smallest_k(&sweep, &report.scores, report.config.eps, 0.8)? {
        Some((k, f)) => println!("smallest circuit with faithfulness >= 0.8: K = {k} ({f:.3})"),
        None => println!("no K reaches faithfulness 0.8"),
    }
    Ok(())
}
