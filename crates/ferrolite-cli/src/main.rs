//! `ferrolite`: inspect, run and benchmark .tflite models.
#![forbid(unsafe_code)]

mod bench;
mod image_input;
mod inspect;
mod npy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};

#[derive(Parser)]
#[command(name = "ferrolite", version, about = "Run TensorFlow Lite models: inspect, run, bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's subgraphs, tensors, operators, signatures and arena size.
    Inspect {
        model: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a model on .npy inputs (or a picture) and write its outputs.
    Run(RunArgs),
    /// Time load, allocate and invoke, like TFLite's benchmark_model.
    Bench(bench::BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Scale {
    /// Pixels to [-1, 1] (MobileNet, BlazeFace).
    MinusOneToOne,
    /// Pixels to [0, 1].
    ZeroToOne,
    /// Pixels kept in [0, 255].
    Raw,
}

#[derive(clap::Args)]
struct RunArgs {
    model: PathBuf,
    /// An input as .npy, in input order; repeat for several inputs.
    #[arg(long = "input", value_name = "NPY")]
    inputs: Vec<PathBuf>,
    /// Where to write 0.npy, 1.npy, ... (one per output, in output order).
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// A picture (PNG or JPEG) for a model with one image input.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs")]
    image: Option<PathBuf>,
    /// How --image pixels map to a float input.
    #[arg(long, value_enum, default_value = "minus-one-to-one")]
    scale: Scale,
    /// A text file with one label per line, for the top-k listing.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// How many top classes to print for --image.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Use only the reference kernels (like TFLite's BUILTIN_REF resolver):
    /// float sums in TFLite's reference order, slower.
    #[arg(long)]
    reference_kernels: bool,
    /// Read float GEMM weights in place instead of packing them: faster
    /// start (good for one run), slower large convolutions.
    #[arg(long)]
    no_weight_packing: bool,
    /// Run each float conv and the depthwise conv reading its output as
    /// separate nodes (no banded fusion; the per-node profile shows both).
    #[arg(long)]
    no_fusion: bool,
}

/// `ferrolite inspect m.tflite | head` closes our stdout early. Rust
/// ignores SIGPIPE, so the next `println!` panics; end quietly instead, with
/// the status a shell gives a process killed by SIGPIPE (128 + 13).
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, json } => inspect::inspect(&model, json),
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn load(path: &std::path::Path) -> Result<Model<'static>, String> {
    Model::from_file(path).map_err(|e| e.to_string())
}

fn run(args: RunArgs) -> Result<(), String> {
    let model = load(&args.model)?;
    let resolver = OpResolver::with_builtins();
    let options = InterpreterOptions {
        threads: args.threads,
        reference_kernels: args.reference_kernels,
        pack_weights: !args.no_weight_packing,
        fuse_ops: !args.no_fusion,
        ..Default::default()
    };
    let mut it = Interpreter::new(&model, &resolver, options).map_err(|e| e.to_string())?;

    if let Some(image) = &args.image {
        it.allocate_tensors().map_err(|e| e.to_string())?;
        image_input::fill_input(&mut it, image, args.scale)?;
    } else {
        if args.inputs.len() != it.input_count() {
            return Err(format!("the model has {} input(s), {} --input given", it.input_count(), args.inputs.len()));
        }
        let arrays = args.inputs.iter().map(|p| npy::read(p)).collect::<Result<Vec<_>, _>>()?;
        // Inputs whose shape differs from the model's are resized first.
        for (i, a) in arrays.iter().enumerate() {
            let info = it.tensor_info(it.inputs()[i]).map_err(|e| e.to_string())?;
            if info.shape != a.shape {
                it.resize_input(i, &a.shape).map_err(|e| e.to_string())?;
            }
        }
        it.allocate_tensors().map_err(|e| e.to_string())?;
        for (i, (a, path)) in arrays.iter().zip(&args.inputs).enumerate() {
            let t = it.input(i).map_err(|e| e.to_string())?;
            if t.dtype() != a.dtype {
                return Err(format!(
                    "{}: input {i} ('{}') is {}, the file holds {}",
                    path.display(),
                    t.name(),
                    t.dtype(),
                    a.dtype
                ));
            }
            it.set_input_bytes(i, &a.bytes).map_err(|e| e.to_string())?;
        }
    }

    it.invoke().map_err(|e| e.to_string())?;

    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for i in 0..it.output_count() {
            let t = it.output(i).map_err(|e| e.to_string())?;
            npy::write(&dir.join(format!("{i}.npy")), t.dtype(), t.shape(), t.bytes)?;
        }
    }
    if args.image.is_some() {
        image_input::print_top_k(&it, args.labels.as_deref(), args.top_k)?;
    } else if args.output_dir.is_none() {
        for i in 0..it.output_count() {
            let t = it.output(i).map_err(|e| e.to_string())?;
            println!("output {i} '{}': {} {:?}", t.name(), t.dtype(), t.shape());
        }
    }
    Ok(())
}
