//! `ferrolite bench`: load, allocate and invoke timings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrolite::{DataType, Interpreter, InterpreterOptions, Model, OpResolver};
use serde_json::json;

#[derive(clap::Args)]
pub struct BenchArgs {
    model: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed invocations.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Untimed invocations before the timed ones.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Add a per-op-type and per-node time table.
    #[arg(long)]
    profile: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Time the reference kernels instead of the optimised ones.
    #[arg(long)]
    reference_kernels: bool,
    /// Read float GEMM weights in place instead of packing them at
    /// allocate: faster start, slower invokes.
    #[arg(long)]
    no_weight_packing: bool,
    /// Run each float conv and the depthwise conv reading its output as
    /// separate nodes (no banded fusion; the per-node profile shows both).
    #[arg(long)]
    no_fusion: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The process's peak resident memory, from the kernel (Linux only).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Deterministic pseudo-random bytes so every run sees the same input.
fn fill_inputs(it: &mut Interpreter<'_>) -> Result<(), String> {
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..it.input_count() {
        let mut t = it.input_mut(i).map_err(|e| e.to_string())?;
        match t.dtype() {
            DataType::Float32 => {
                for v in t.as_slice_mut::<f32>().map_err(|e| e.to_string())? {
                    *v = (next() % 20001) as f32 / 10000.0 - 1.0;
                }
            }
            _ => t.bytes.iter_mut().for_each(|b| *b = next() as u8),
        }
    }
    Ok(())
}

/// Floating-point (or integer multiply-add) operations of one run of node
/// `node`, counting a multiply-add as two, for the ops where the count is
/// a clear function of the shapes: convolutions, FULLY_CONNECTED and
/// BATCH_MATMUL. `None` for the rest (their time is memory traffic).
fn node_flops(model: &Model<'_>, it: &Interpreter<'_>, node: usize) -> Option<f64> {
    let op = model.subgraphs.first()?.operators.get(node)?;
    let code = model.operator_codes.get(op.opcode_index)?.builtin_code;
    let shape = |i: usize| -> Option<Vec<usize>> {
        let t = (*op.inputs.get(i)?)?;
        Some(it.tensor_info(t).ok()?.shape.clone())
    };
    let out_elems = it.tensor_info(*op.outputs.first()?).ok()?.num_elements() as f64;
    use ferrolite::schema::BuiltinOperator as B;
    let macs = match code {
        c if c == B::Conv2d as i32 => {
            let f = shape(1)?; // [out_c, kh, kw, in_c per group]
            out_elems * f.get(1..4)?.iter().product::<usize>() as f64
        }
        c if c == B::DepthwiseConv2d as i32 => {
            let f = shape(1)?; // [1, kh, kw, out_c]
            out_elems * (f.get(1)? * f.get(2)?) as f64
        }
        c if c == B::FullyConnected as i32 => out_elems * *shape(1)?.last()? as f64,
        c if c == B::TransposeConv as i32 => {
            let f = shape(1)?; // [out_c, kh, kw, in_c]; every input value meets kh*kw*out_c taps
            let x = shape(2)?;
            x.iter().product::<usize>() as f64 * (f.first()? * f.get(1)? * f.get(2)?) as f64
        }
        c if c == B::BatchMatmul as i32 => {
            let lhs = shape(0)?;
            let adj_x = matches!(&op.builtin_options, Some(ferrolite::schema::BuiltinOptions::BatchMatMulOptions(o)) if o.adj_x);
            let depth = if adj_x { lhs.get(lhs.len().checked_sub(2)?)? } else { lhs.last()? };
            out_elems * *depth as f64
        }
        _ => return None,
    };
    Some(2.0 * macs)
}

pub fn bench(args: BenchArgs) -> Result<(), String> {
    let t0 = Instant::now();
    let model = Model::from_file(&args.model).map_err(|e| e.to_string())?;
    let load = t0.elapsed();

    let resolver = OpResolver::with_builtins();
    let t1 = Instant::now();
    let mut it = Interpreter::new(
        &model,
        &resolver,
        InterpreterOptions {
            threads: args.threads,
            reference_kernels: args.reference_kernels,
            pack_weights: !args.no_weight_packing,
            fuse_ops: !args.no_fusion,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    it.allocate_tensors().map_err(|e| e.to_string())?;
    let allocate = t1.elapsed();
    fill_inputs(&mut it)?;

    let t2 = Instant::now();
    it.invoke().map_err(|e| e.to_string())?;
    let first = t2.elapsed();
    for _ in 0..args.warmup {
        it.invoke().map_err(|e| e.to_string())?;
    }

    let runs = args.runs.max(1);
    let mut times = Vec::with_capacity(runs);
    let mut by_node: Vec<Duration> = vec![Duration::ZERO; it.node_count()];
    let mut node_ops: Vec<String> = vec![String::new(); it.node_count()];
    for _ in 0..runs {
        let t = Instant::now();
        if args.profile {
            for nt in it.invoke_profiled().map_err(|e| e.to_string())? {
                by_node[nt.node] += nt.elapsed;
                node_ops[nt.node] = nt.op;
            }
        } else {
            it.invoke().map_err(|e| e.to_string())?;
        }
        times.push(t.elapsed());
    }
    let mut sorted = times.clone();
    sorted.sort();
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let median = pick(0.5);
    let p90 = pick(0.9);
    let min = sorted[0];
    let rss = peak_rss_bytes();

    // A fused node's time covers the node fused into it: count both.
    let flops: Vec<Option<f64>> = (0..by_node.len())
        .map(|n| match it.fused_producer(n) {
            Some(p) => Some(node_flops(&model, &it, n)? + node_flops(&model, &it, p)?),
            None => node_flops(&model, &it, n),
        })
        .collect();
    // GFLOP/s of `f` flops done `runs` times in `d`.
    let gflops =
        |f: Option<f64>, d: Duration| f.filter(|_| !d.is_zero()).map(|f| f * runs as f64 / d.as_secs_f64() / 1e9);
    let mut by_type: BTreeMap<&str, (Duration, usize, Option<f64>)> = BTreeMap::new();
    for ((d, op), f) in by_node.iter().zip(&node_ops).zip(&flops) {
        if !op.is_empty() {
            let e = by_type.entry(op.as_str()).or_default();
            e.0 += *d;
            e.1 += 1;
            if let Some(f) = f {
                e.2 = Some(e.2.unwrap_or(0.0) + f);
            }
        }
    }
    let total: Duration = by_node.iter().sum();

    if args.json {
        let mut v = json!({
            "model": args.model.display().to_string(),
            "threads": args.threads,
            "runs": runs,
            "warmup": args.warmup,
            "load_ms": ms(load),
            "allocate_ms": ms(allocate),
            "first_invoke_ms": ms(first),
            "median_ms": ms(median),
            "p90_ms": ms(p90),
            "min_ms": ms(min),
            "arena_bytes": it.arena_size(),
            "owned_bytes": it.owned_bytes(),
            "peak_rss_bytes": rss,
        });
        if args.profile {
            let per_op: Vec<_> = by_type
                .iter()
                .map(|(op, (d, n, f))| {
                    json!({"op": op, "nodes": n, "ms_per_run": ms(*d) / runs as f64, "gflops": gflops(*f, *d)})
                })
                .collect();
            let per_node: Vec<_> = by_node
                .iter()
                .zip(&node_ops)
                .enumerate()
                .filter(|(_, (_, op))| !op.is_empty())
                .map(|(i, (d, op))| {
                    json!({"node": i, "op": op, "ms_per_run": ms(*d) / runs as f64, "gflops": gflops(flops[i], *d)})
                })
                .collect();
            v["profile"] = json!({"per_op_type": per_op, "per_node": per_node});
        }
        println!("{v}");
        return Ok(());
    }

    println!("model: {}", args.model.display());
    println!("threads: {}  runs: {runs}  warmup: {}", args.threads, args.warmup);
    println!("load:         {:9.3} ms", ms(load));
    println!("allocate:     {:9.3} ms", ms(allocate));
    println!("first invoke: {:9.3} ms", ms(first));
    println!("invoke:       median {:.3} ms  p90 {:.3} ms  min {:.3} ms", ms(median), ms(p90), ms(min));
    println!("arena:        {} bytes (+ {} bytes owned constants)", it.arena_size(), it.owned_bytes());
    if let Some(r) = rss {
        println!("peak RSS:     {r} bytes");
    }
    if args.profile && !total.is_zero() {
        let rate = |g: Option<f64>| g.map_or(String::new(), |g| format!("{g:8.1} GFLOP/s"));
        println!("\nper op type (ms per run, share, rate where the op has a FLOP count):");
        let mut rows: Vec<_> = by_type.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
        for (op, (d, n, f)) in rows {
            println!(
                "  {op:<28} {:>4} nodes {:9.3} ms {:5.1}% {}",
                n,
                ms(*d) / runs as f64,
                100.0 * d.as_secs_f64() / total.as_secs_f64(),
                rate(gflops(*f, *d))
            );
        }
        println!("\nper node:");
        for (i, (d, op)) in by_node.iter().zip(&node_ops).enumerate() {
            if !op.is_empty() {
                println!("  {i:4} {op:<28} {:9.3} ms {}", ms(*d) / runs as f64, rate(gflops(flops[i], *d)));
            }
        }
    }
    Ok(())
}
