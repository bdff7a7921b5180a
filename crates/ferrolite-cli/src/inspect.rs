//! `ferrolite inspect`: what is in a model file.

use std::path::Path;

use ferrolite::{Interpreter, InterpreterOptions, OpResolver, TensorInfo};
use serde_json::{json, Value};

fn tensor_json(index: usize, t: &TensorInfo, constant: bool) -> Value {
    let quant = t.quant.as_ref().map(|q| {
        json!({
            "scales": q.scales,
            "zero_points": q.zero_points,
            "quantized_dimension": q.quantized_dimension,
        })
    });
    json!({
        "index": index,
        "name": t.name,
        "dtype": t.dtype.name(),
        "shape": t.shape,
        "shape_signature": t.shape_signature,
        "quantization": quant,
        "constant": constant,
        "variable": t.is_variable,
    })
}

pub fn inspect(path: &Path, as_json: bool) -> Result<(), String> {
    let model = crate::load(path)?;
    let resolver = OpResolver::with_builtins();
    // The arena size needs a successful allocation; report why not otherwise.
    let arena = match Interpreter::new(&model, &resolver, InterpreterOptions::default()) {
        Ok(mut it) => match it.allocate_tensors() {
            Ok(()) => Ok(it.arena_size()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };

    let mut subgraphs = Vec::new();
    for (si, sg) in model.subgraphs.iter().enumerate() {
        let tensors: Vec<Value> =
            sg.tensors.iter().enumerate().map(|(i, t)| tensor_json(i, &t.info, t.data.is_some())).collect();
        let operators: Vec<Value> = sg
            .operators
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let code = &model.operator_codes[op.opcode_index];
                json!({
                    "index": i,
                    "op": code.name(),
                    "version": code.version,
                    "inputs": op.inputs.iter().map(|t| t.map(|t| t as i64).unwrap_or(-1)).collect::<Vec<_>>(),
                    "outputs": op.outputs,
                    "options": op.builtin_options.as_ref().map(|o| format!("{o:?}")),
                })
            })
            .collect();
        subgraphs.push(json!({
            "index": si,
            "name": sg.name,
            "inputs": sg.inputs,
            "outputs": sg.outputs,
            "tensors": tensors,
            "operators": operators,
        }));
    }
    let signatures: Vec<Value> = model
        .signatures
        .iter()
        .map(|s| json!({"key": s.key, "subgraph": s.subgraph, "inputs": s.inputs, "outputs": s.outputs}))
        .collect();

    if as_json {
        let v = json!({
            "file": path.display().to_string(),
            "bytes": model.bytes().len(),
            "version": model.version,
            "description": model.description,
            "subgraphs": subgraphs,
            "signatures": signatures,
            "arena_bytes": arena.as_ref().ok(),
            "allocate_error": arena.as_ref().err(),
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
        return Ok(());
    }

    println!("{}: {} bytes, schema version {}", path.display(), model.bytes().len(), model.version);
    if let Some(d) = &model.description {
        println!("description: {d}");
    }
    for (si, sg) in model.subgraphs.iter().enumerate() {
        println!("\nsubgraph {si} '{}': {} tensors, {} operators", sg.name, sg.tensors.len(), sg.operators.len());
        let show = |label: &str, list: &[usize]| {
            for (k, &t) in list.iter().enumerate() {
                let info = &sg.tensors[t].info;
                println!(
                    "  {label} {k}: tensor {t} '{}' {} {:?}{}",
                    info.name,
                    info.dtype,
                    info.shape,
                    quant_str(info)
                );
            }
        };
        show("input", &sg.inputs);
        show("output", &sg.outputs);
        println!("  tensors:");
        for (i, t) in sg.tensors.iter().enumerate() {
            let kind = if t.data.is_some() {
                " const"
            } else if t.info.is_variable {
                " var"
            } else {
                ""
            };
            println!(
                "    {i:4} {:<10} {:<20}{kind} '{}'{}",
                t.info.dtype.name(),
                format!("{:?}", t.info.shape),
                t.info.name,
                quant_str(&t.info)
            );
        }
        println!("  operators:");
        for (i, op) in sg.operators.iter().enumerate() {
            let code = &model.operator_codes[op.opcode_index];
            let ins: Vec<String> = op.inputs.iter().map(|t| t.map(|t| t.to_string()).unwrap_or("-".into())).collect();
            println!("    {i:4} {} v{} in [{}] out {:?}", code.name(), code.version, ins.join(", "), op.outputs);
            if let Some(o) = &op.builtin_options {
                println!("         {o:?}");
            }
        }
    }
    for s in &model.signatures {
        println!("\nsignature '{}' (subgraph {}): inputs {:?} outputs {:?}", s.key, s.subgraph, s.inputs, s.outputs);
    }
    match arena {
        Ok(a) => println!("\narena: {a} bytes"),
        Err(e) => println!("\narena: not planned: {e}"),
    }
    Ok(())
}

fn quant_str(t: &TensorInfo) -> String {
    match &t.quant {
        None => String::new(),
        Some(q) if q.scales.len() == 1 => {
            format!(" scale {} zero_point {}", q.scales[0], q.zero_points[0])
        }
        Some(q) => format!(" per-channel ({} scales, dim {})", q.scales.len(), q.quantized_dimension),
    }
}
