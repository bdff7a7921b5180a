//! Loading and verifying a .tflite file.
//!
//! The FlatBuffer is read once, at load, through the generated readers of
//! `ferrolite-schema`; every offset, length, index and size is checked there
//! and the result is a small owned description of the graph ([`Model`]).
//! Constant tensor data is not copied: a tensor refers to a byte range of
//! the file, which stays borrowed or memory-mapped for the model's life.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::path::Path;

use ferrolite_schema as fb;
use planus::ReadAsRoot;

use crate::dtype::DataType;
use crate::error::{Error, Location, Result};
use crate::tensor::{checked_num_elements, QuantParams, TensorInfo};

/// The model's bytes: borrowed from the caller, owned, or memory-mapped.
enum ModelBytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl ModelBytes<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            ModelBytes::Borrowed(b) => b,
            ModelBytes::Owned(v) => v,
            ModelBytes::Mapped(m) => m,
        }
    }
}

/// The builtin code TFLite uses for custom operators.
pub const CUSTOM_OPCODE: i32 = 32;

/// An entry of the model's operator-code table.
#[derive(Clone, Debug)]
pub struct OperatorCode {
    /// The builtin operator number (`BuiltinOperator`); [`CUSTOM_OPCODE`] for custom ops.
    pub builtin_code: i32,
    /// The name of a custom op.
    pub custom_code: Option<String>,
    pub version: i32,
}

impl OperatorCode {
    /// `CONV_2D`, or the custom op's name.
    pub fn name(&self) -> String {
        if self.builtin_code == CUSTOM_OPCODE {
            return self.custom_code.clone().unwrap_or_else(|| "CUSTOM".into());
        }
        match fb::builtin_operator_name(self.builtin_code) {
            Some(n) => n.to_string(),
            None => format!("BUILTIN_{}", self.builtin_code),
        }
    }
}

/// A tensor of a subgraph as the file describes it.
#[derive(Clone, Debug)]
pub struct TensorDef {
    pub info: TensorInfo,
    /// The bytes of a constant tensor, as a range of the file.
    pub data: Option<Range<usize>>,
    /// Present for tensors stored sparse (DENSIFY's input).
    pub sparsity: Option<Box<fb::SparsityParameters>>,
}

/// An operator (node) of a subgraph.
#[derive(Clone, Debug)]
pub struct OperatorDef {
    pub opcode_index: usize,
    /// `None` for an optional input that is absent (index -1 in the file).
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    pub intermediates: Vec<usize>,
    pub builtin_options: Option<fb::BuiltinOptions>,
    pub builtin_options_2: Option<fb::BuiltinOptions2>,
    /// The custom op's options, as a range of the file (often a FlexBuffer).
    pub custom_options: Range<usize>,
}

/// A subgraph: tensors, operators in execution order, inputs and outputs.
#[derive(Clone, Debug)]
pub struct SubgraphDef {
    pub name: String,
    pub tensors: Vec<TensorDef>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub operators: Vec<OperatorDef>,
}

/// A named entry point: names for some inputs and outputs of a subgraph.
#[derive(Clone, Debug)]
pub struct SignatureDef {
    pub key: String,
    pub subgraph: usize,
    /// (name, tensor index) pairs.
    pub inputs: Vec<(String, usize)>,
    pub outputs: Vec<(String, usize)>,
}

/// A verified model. Cheap to share between interpreters.
pub struct Model<'a> {
    bytes: ModelBytes<'a>,
    pub version: u32,
    pub description: Option<String>,
    pub operator_codes: Vec<OperatorCode>,
    pub subgraphs: Vec<SubgraphDef>,
    pub signatures: Vec<SignatureDef>,
    /// Metadata entries: name and the bytes' range in the file.
    pub metadata: Vec<(String, Range<usize>)>,
}

impl std::fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("bytes", &self.bytes.as_slice().len())
            .field("version", &self.version)
            .field("subgraphs", &self.subgraphs.len())
            .finish()
    }
}

impl<'a> Model<'a> {
    /// Read and verify a model from bytes, without copying them.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>> {
        Model::load(ModelBytes::Borrowed(bytes))
    }

    /// The whole file as loaded.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The bytes of a range that was checked at load.
    pub fn slice(&self, range: &Range<usize>) -> &[u8] {
        self.bytes.as_slice().get(range.clone()).unwrap_or(&[])
    }

    /// The bytes of a metadata entry by name (e.g. "min_runtime_version").
    pub fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.metadata.iter().find(|(n, _)| n == name).map(|(_, r)| self.slice(r))
    }
}

impl Model<'static> {
    /// Read and verify a model that owns its bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Model<'static>> {
        Model::load(ModelBytes::Owned(bytes))
    }

    /// Memory-map a .tflite file and verify it. The weights stay in the page
    /// cache, shared with other processes; nothing is copied.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Model<'static>> {
        let path = path.as_ref();
        let io = |error| Error::Io { path: path.display().to_string(), error };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Err(Error::Format { location: Location::Model, message: "the file is empty".into() });
        }
        // SAFETY: the map is read-only and private to this process. A file
        // truncated by another process while mapped would fault (SIGBUS);
        // that is the accepted contract of every memory-mapped model loader,
        // and `from_vec` exists for callers who cannot accept it.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Model::load(ModelBytes::Mapped(map))
    }
}

/// Turns planus' read errors into ours, with the place and byte offset.
fn fmt_err(location: Location) -> impl Fn(planus::Error) -> Error {
    move |e| Error::Format {
        location: location.clone(),
        message: format!(
            "{} (while reading {}.{} at byte {})",
            e.error_kind, e.source_location.type_, e.source_location.method, e.source_location.byte_offset
        ),
    }
}

fn invalid(location: Location, message: impl Into<String>) -> Error {
    Error::InvalidModel { location, message: message.into() }
}

/// The largest tensor we agree to describe: larger claims are corrupt files,
/// and refusing them here keeps every later allocation bounded. (1 TiB, or
/// the address space on a 32-bit target.)
const MAX_TENSOR_BYTES: usize = if usize::BITS >= 64 { (1u64 << 40) as usize } else { usize::MAX };

/// What one table costs the [`LoadBudget`] besides its strings and vectors:
/// roughly the size of the Rust value the loader and interpreter keep for it.
const TABLE_COST: usize = 64;

/// Work and memory the loader may spend, in approximate bytes.
///
/// A FlatBuffer is a DAG, not a tree: a vector may hold the same table
/// offset a million times, and a table may point at a vector another table
/// uses too. Every read is in bounds, yet a hostile 100 KB file could
/// describe a graph of gigabytes (a million operators sharing one input
/// list of 25,000 entries, a million tensors sharing one long name) and
/// make loading, or the interpreter built from it, allocate without bound
/// or run for hours. Files from a converter copy each value once, so what
/// they decode is a small multiple of their size; the budget allows
/// generously more and turns anything beyond into an error.
struct LoadBudget {
    left: Cell<usize>,
    file_len: usize,
    /// Scratch space to measure owned option tables by serializing them.
    scratch: RefCell<planus::Builder>,
}

impl LoadBudget {
    fn new(file_len: usize) -> LoadBudget {
        LoadBudget {
            left: Cell::new(file_len.saturating_mul(16).saturating_add(16 << 20)),
            file_len,
            scratch: RefCell::new(planus::Builder::new()),
        }
    }

    fn charge(&self, units: usize, location: &Location) -> Result<()> {
        match self.left.get().checked_sub(units) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(Error::Format {
                location: location.clone(),
                message: format!(
                    "the file refers to the same tables and vectors over and over: its {} bytes describe far more data than they hold (corrupt or hostile file)",
                    self.file_len
                ),
            }),
        }
    }

    /// Charge for the owned options of an operator (measured as their
    /// serialized size, since they may hold vectors).
    fn charge_options(
        &self,
        builtin_options: &mut Option<fb::BuiltinOptions>,
        builtin_options_2: &mut Option<fb::BuiltinOptions2>,
        location: &Location,
    ) -> Result<()> {
        if builtin_options.is_none() && builtin_options_2.is_none() {
            return Ok(());
        }
        let op = fb::Operator {
            builtin_options: builtin_options.take(),
            builtin_options_2: builtin_options_2.take(),
            ..Default::default()
        };
        let size = {
            let mut b = self.scratch.borrow_mut();
            b.clear();
            let n = b.finish(&op, None).len();
            b.clear();
            n
        };
        *builtin_options = op.builtin_options;
        *builtin_options_2 = op.builtin_options_2;
        self.charge(size, location)
    }

    /// Charge for a tensor's owned sparsity parameters.
    fn charge_sparsity(&self, sparsity: &mut Option<Box<fb::SparsityParameters>>, location: &Location) -> Result<()> {
        if sparsity.is_none() {
            return Ok(());
        }
        let t = fb::Tensor { sparsity: sparsity.take(), ..Default::default() };
        let size = {
            let mut b = self.scratch.borrow_mut();
            b.clear();
            let n = b.finish(&t, None).len();
            b.clear();
            n
        };
        *sparsity = t.sparsity;
        self.charge(size, location)
    }
}

/// An optional union field whose tag this schema does not know (a newer
/// converter's options for a newer op) reads as absent: the op is then
/// reported unsupported, or rejects missing options, at `allocate_tensors`.
fn known_union<T>(r: planus::Result<Option<T>>) -> planus::Result<Option<T>> {
    match r {
        Err(e) if matches!(e.error_kind, planus::errors::ErrorKind::UnknownUnionTag { .. }) => Ok(None),
        r => r,
    }
}

impl<'a> Model<'a> {
    fn load(bytes: ModelBytes<'a>) -> Result<Model<'a>> {
        let data = bytes.as_slice();
        let model_loc = Location::Model;
        if data.len() < 8 {
            return Err(Error::Format {
                location: model_loc,
                message: format!("file is {} bytes long, too short for a FlatBuffer", data.len()),
            });
        }
        if &data[4..8] != fb::FILE_IDENTIFIER {
            return Err(Error::Format {
                location: model_loc,
                message: format!(
                    "file identifier at byte 4 is {:?}, expected \"TFL3\": not a TFLite model",
                    String::from_utf8_lossy(&data[4..8])
                ),
            });
        }
        let e = fmt_err(Location::Model);
        let budget = LoadBudget::new(data.len());
        let root = fb::ModelRef::read_as_root(data).map_err(&e)?;
        let version = root.version().map_err(&e)?;
        if version != 3 {
            return Err(invalid(Location::Model, format!("schema version {version}, only version 3 is supported")));
        }
        let description = root.description().map_err(&e)?;
        budget.charge(description.map_or(0, str::len), &Location::Model)?;
        let description = description.map(str::to_string);

        let base = data.as_ptr() as usize;
        let range_of = |s: &[u8]| -> Range<usize> {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };

        // Operator codes.
        let mut operator_codes = Vec::new();
        if let Some(codes) = root.operator_codes().map_err(&e)? {
            for (i, code) in codes.iter().enumerate() {
                let e = fmt_err(Location::OperatorCode(i));
                budget.charge(TABLE_COST, &Location::OperatorCode(i))?;
                let code = code.map_err(&e)?;
                let deprecated = code.deprecated_builtin_code().map_err(&e)? as i32;
                // An unknown builtin number is a newer op, not a broken file:
                // keep the number so the resolver can name it.
                let builtin = match code.builtin_code() {
                    Ok(b) => b as i32,
                    Err(err) => match err.error_kind {
                        planus::errors::ErrorKind::UnknownEnumTag { source } => source.tag as i32,
                        _ => return Err(e(err)),
                    },
                };
                let custom_code = code.custom_code().map_err(&e)?;
                budget.charge(custom_code.map_or(0, str::len), &Location::OperatorCode(i))?;
                operator_codes.push(OperatorCode {
                    // Files from before the int32 field set only the byte.
                    builtin_code: builtin.max(deprecated),
                    custom_code: custom_code.map(str::to_string),
                    version: code.version().map_err(&e)?,
                });
            }
        }

        // Buffers: each either inside the FlatBuffer or, for files over
        // 2 GB, at an offset of the file past the FlatBuffer.
        let mut buffers: Vec<Option<Range<usize>>> = Vec::new();
        if let Some(bufs) = root.buffers().map_err(&e)? {
            for (i, b) in bufs.iter().enumerate() {
                let e = fmt_err(Location::Buffer(i));
                budget.charge(TABLE_COST / 2, &Location::Buffer(i))?;
                let b = b.map_err(&e)?;
                let offset = b.offset().map_err(&e)?;
                let size = b.size().map_err(&e)?;
                let range = if offset > 1 {
                    let end = offset.checked_add(size).filter(|&end| end <= data.len() as u64).ok_or_else(|| {
                        invalid(
                            Location::Buffer(i),
                            format!(
                                "data at offset {offset} size {size} lies past the end of the {}-byte file",
                                data.len()
                            ),
                        )
                    })?;
                    Some(offset as usize..end as usize)
                } else {
                    b.data().map_err(&e)?.filter(|d| !d.is_empty()).map(range_of)
                };
                buffers.push(range);
            }
        }

        // Subgraphs.
        let mut subgraphs = Vec::new();
        let sgs =
            root.subgraphs().map_err(&e)?.ok_or_else(|| invalid(Location::Model, "the model has no subgraphs"))?;
        for (si, sg) in sgs.iter().enumerate() {
            let sloc = Location::Subgraph(si);
            let e = fmt_err(sloc.clone());
            budget.charge(TABLE_COST, &sloc)?;
            let sg = sg.map_err(&e)?;
            subgraphs.push(read_subgraph(si, sg, &buffers, &operator_codes, &range_of, &budget)?);
        }
        if subgraphs.is_empty() {
            return Err(invalid(Location::Model, "the model has no subgraphs"));
        }

        // Signatures.
        let mut signatures = Vec::new();
        if let Some(sigs) = root.signature_defs().map_err(&e)? {
            for (i, s) in sigs.iter().enumerate() {
                let loc = Location::Signature(i);
                let e = fmt_err(loc.clone());
                budget.charge(TABLE_COST, &loc)?;
                let s = s.map_err(&e)?;
                let subgraph = s.subgraph_index().map_err(&e)? as usize;
                let Some(sg) = subgraphs.get(subgraph) else {
                    return Err(invalid(loc, format!("subgraph index {subgraph} out of range")));
                };
                let maps = |v: Option<planus::Vector<'_, planus::Result<fb::TensorMapRef<'_>>>>| -> Result<Vec<(String, usize)>> {
                    let mut out = Vec::new();
                    for m in v.iter().flat_map(|v| v.iter()) {
                        budget.charge(TABLE_COST, &loc)?;
                        let m = m.map_err(&e)?;
                        let name = m.name().map_err(&e)?.unwrap_or_default();
                        budget.charge(name.len(), &loc)?;
                        let name = name.to_string();
                        let t = m.tensor_index().map_err(&e)? as usize;
                        if t >= sg.tensors.len() {
                            return Err(invalid(loc.clone(), format!("'{name}' names tensor {t}, out of range")));
                        }
                        out.push((name, t));
                    }
                    Ok(out)
                };
                let inputs = maps(s.inputs().map_err(&e)?)?;
                let outputs = maps(s.outputs().map_err(&e)?)?;
                let key = s.signature_key().map_err(&e)?.unwrap_or_default();
                budget.charge(key.len(), &loc)?;
                signatures.push(SignatureDef { key: key.to_string(), subgraph, inputs, outputs });
            }
        }

        let mut metadata = Vec::new();
        if let Some(md) = root.metadata().map_err(&e)? {
            for m in md.iter() {
                budget.charge(TABLE_COST, &Location::Model)?;
                let m = m.map_err(&e)?;
                let name = m.name().map_err(&e)?.unwrap_or_default();
                budget.charge(name.len(), &Location::Model)?;
                let name = name.to_string();
                let b = m.buffer().map_err(&e)? as usize;
                let range = buffers.get(b).cloned().flatten().unwrap_or(0..0);
                metadata.push((name, range));
            }
        }

        Ok(Model { bytes, version, description, operator_codes, subgraphs, signatures, metadata })
    }
}

fn read_subgraph(
    si: usize,
    sg: fb::SubGraphRef<'_>,
    buffers: &[Option<Range<usize>>],
    operator_codes: &[OperatorCode],
    range_of: &dyn Fn(&[u8]) -> Range<usize>,
    budget: &LoadBudget,
) -> Result<SubgraphDef> {
    let sloc = Location::Subgraph(si);
    let e = fmt_err(sloc.clone());
    let name = sg.name().map_err(&e)?.unwrap_or_default();
    budget.charge(name.len(), &sloc)?;
    let name = name.to_string();

    let mut tensors = Vec::new();
    if let Some(ts) = sg.tensors().map_err(&e)? {
        for (ti, t) in ts.iter().enumerate() {
            let loc = Location::Tensor { subgraph: si, tensor: ti, name: String::new() };
            budget.charge(TABLE_COST, &loc)?;
            let t = t.map_err(fmt_err(loc.clone()))?;
            tensors.push(read_tensor(si, ti, t, buffers, budget)?);
        }
    }
    let n = tensors.len();
    let index_list = |v: Option<planus::Vector<'_, i32>>, what: &str| -> Result<Vec<usize>> {
        budget.charge(8 * v.map_or(0, |v| v.len()), &sloc)?;
        let mut out = Vec::new();
        for t in v.iter().flat_map(|v| v.iter()) {
            if t < 0 || t as usize >= n {
                return Err(invalid(
                    sloc.clone(),
                    format!("{what} names tensor {t}, but the subgraph has {n} tensors"),
                ));
            }
            out.push(t as usize);
        }
        Ok(out)
    };
    let inputs = index_list(sg.inputs().map_err(&e)?, "the input list")?;
    let outputs = index_list(sg.outputs().map_err(&e)?, "the output list")?;

    let mut operators = Vec::new();
    if let Some(ops) = sg.operators().map_err(&e)? {
        for (oi, op) in ops.iter().enumerate() {
            let loc = Location::Operator { subgraph: si, index: oi, op: "?".into() };
            let e = fmt_err(loc.clone());
            budget.charge(TABLE_COST, &loc)?;
            let op = op.map_err(&e)?;
            let opcode_index = op.opcode_index().map_err(&e)? as usize;
            let Some(code) = operator_codes.get(opcode_index) else {
                return Err(invalid(
                    loc,
                    format!("opcode index {opcode_index}, but the model has {} operator codes", operator_codes.len()),
                ));
            };
            let loc = Location::Operator { subgraph: si, index: oi, op: code.name() };
            let e = fmt_err(loc.clone());
            // The interpreter keeps the op's name per node.
            let op_inputs_v = op.inputs().map_err(&e)?;
            let op_outputs_v = op.outputs().map_err(&e)?;
            let intermediates_v = op.intermediates().map_err(&e)?;
            let len = |v: &Option<planus::Vector<'_, i32>>| v.map_or(0, |v| v.len());
            budget.charge(
                code.name().len() + 8 * (len(&op_inputs_v) + len(&op_outputs_v) + len(&intermediates_v)),
                &loc,
            )?;
            let mut op_inputs = Vec::new();
            for t in op_inputs_v.iter().flat_map(|v| v.iter()) {
                if t == -1 {
                    op_inputs.push(None);
                } else if t < 0 || t as usize >= n {
                    return Err(invalid(loc, format!("input names tensor {t}, but the subgraph has {n} tensors")));
                } else {
                    op_inputs.push(Some(t as usize));
                }
            }
            let mut op_outputs = Vec::new();
            for t in op_outputs_v.iter().flat_map(|v| v.iter()) {
                if t < 0 || t as usize >= n {
                    return Err(invalid(loc, format!("output names tensor {t}, but the subgraph has {n} tensors")));
                }
                op_outputs.push(t as usize);
            }
            let mut intermediates = Vec::new();
            for t in intermediates_v.iter().flat_map(|v| v.iter()) {
                if t >= 0 && (t as usize) < n {
                    intermediates.push(t as usize);
                }
            }
            let mut builtin_options = match known_union(op.builtin_options()).map_err(&e)? {
                Some(o) => Some(fb::BuiltinOptions::try_from(o).map_err(&e)?),
                None => None,
            };
            let mut builtin_options_2 = match known_union(op.builtin_options_2()).map_err(&e)? {
                Some(o) => Some(fb::BuiltinOptions2::try_from(o).map_err(&e)?),
                None => None,
            };
            budget.charge_options(&mut builtin_options, &mut builtin_options_2, &loc)?;
            let custom_options = op.custom_options().map_err(&e)?.map(range_of).unwrap_or(0..0);
            operators.push(OperatorDef {
                opcode_index,
                inputs: op_inputs,
                outputs: op_outputs,
                intermediates,
                builtin_options,
                builtin_options_2,
                custom_options,
            });
        }
    }
    let sg = SubgraphDef { name, tensors, inputs, outputs, operators };
    check_dataflow(si, &sg, operator_codes)?;
    Ok(sg)
}

fn read_tensor(
    si: usize,
    ti: usize,
    t: fb::TensorRef<'_>,
    buffers: &[Option<Range<usize>>],
    budget: &LoadBudget,
) -> Result<TensorDef> {
    let e0 = fmt_err(Location::Tensor { subgraph: si, tensor: ti, name: String::new() });
    let name = t.name().map_err(&e0)?.unwrap_or_default();
    budget.charge(name.len(), &Location::Tensor { subgraph: si, tensor: ti, name: String::new() })?;
    let name = name.to_string();
    let loc = Location::Tensor { subgraph: si, tensor: ti, name: name.clone() };
    let e = fmt_err(loc.clone());
    let type_code = match t.type_() {
        Ok(t) => t as i8 as i64,
        Err(err) => match err.error_kind {
            planus::errors::ErrorKind::UnknownEnumTag { source } => source.tag as i64,
            _ => return Err(e(err)),
        },
    };
    let dtype = i8::try_from(type_code)
        .ok()
        .and_then(DataType::from_tflite)
        .ok_or_else(|| invalid(loc.clone(), format!("unknown tensor type {type_code}")))?;
    let shape_v = t.shape().map_err(&e)?;
    let rank = shape_v.map_or(0, |v| v.len());
    if rank > 16 {
        return Err(invalid(loc, format!("rank {rank} is larger than any op supports")));
    }
    let mut shape = Vec::with_capacity(rank);
    for d in shape_v.iter().flat_map(|v| v.iter()) {
        if d < 0 {
            return Err(invalid(loc, format!("negative dimension {d} in its shape")));
        }
        shape.push(d as usize);
    }
    let shape_signature = t.shape_signature().map_err(&e)?;
    if shape_signature.is_some_and(|v| v.len() > 16) {
        return Err(invalid(
            loc,
            format!(
                "shape_signature of rank {} is larger than any op supports",
                shape_signature.map_or(0, |v| v.len())
            ),
        ));
    }
    let shape_signature = shape_signature.map(|v| v.iter().collect::<Vec<i32>>());
    let count = checked_num_elements(&shape)
        .ok_or_else(|| invalid(loc.clone(), format!("shape {shape:?} has more elements than fit in memory")))?;
    let bytes = dtype.bytes_for(count);
    // `bytes_for` is `None` both when the byte count overflows and for
    // types without a fixed element size (strings...); both must stay below
    // the limit, counting at least a byte per element.
    let too_big = match bytes {
        Some(b) => b > MAX_TENSOR_BYTES,
        None => dtype.size().is_some() || count > MAX_TENSOR_BYTES,
    };
    if too_big {
        return Err(invalid(loc, format!("shape {shape:?} of {dtype} needs more than 1 TiB")));
    }

    let quant = match t.quantization().map_err(&e)? {
        Some(q) => read_quant(q, &shape, &loc, budget)?,
        None => None,
    };
    let mut sparsity = match t.sparsity().map_err(&e)? {
        Some(s) => Some(Box::new(fb::SparsityParameters::try_from(s).map_err(&e)?)),
        None => None,
    };
    budget.charge_sparsity(&mut sparsity, &loc)?;

    let buffer = t.buffer().map_err(&e)? as usize;
    let data = match buffers.get(buffer) {
        Some(r) => r.clone(),
        None if buffer == 0 => None,
        None => {
            return Err(invalid(loc, format!("buffer index {buffer}, but the model has {} buffers", buffers.len())));
        }
    };
    if let (Some(r), Some(expected)) = (&data, bytes) {
        // Sparse constants are smaller than their dense shape; strings and
        // int4 have no fixed element size and are checked by their ops.
        if sparsity.is_none() && r.len() != expected {
            return Err(invalid(
                loc,
                format!("buffer {buffer} holds {} bytes, but shape {shape:?} of {dtype} needs {expected}", r.len()),
            ));
        }
    }
    let is_variable = t.is_variable().map_err(&e)?;
    Ok(TensorDef { info: TensorInfo { name, dtype, shape, shape_signature, quant, is_variable }, data, sparsity })
}

fn read_quant(
    q: fb::QuantizationParametersRef<'_>,
    shape: &[usize],
    loc: &Location,
    budget: &LoadBudget,
) -> Result<Option<QuantParams>> {
    let e = fmt_err(loc.clone());
    let scale_v = q.scale().map_err(&e)?;
    let zero_point_v = q.zero_point().map_err(&e)?;
    budget.charge(4 * scale_v.map_or(0, |v| v.len()) + 8 * zero_point_v.map_or(0, |v| v.len()), loc)?;
    let scales: Vec<f32> = scale_v.map(|v| v.iter().collect()).unwrap_or_default();
    let zero_points: Vec<i64> = zero_point_v.map(|v| v.iter().collect()).unwrap_or_default();
    if scales.is_empty() {
        // min/max-only quantisation info is not used at run time.
        return Ok(None);
    }
    let quantized_dimension = q.quantized_dimension().map_err(&e)?;
    if quantized_dimension < 0 {
        return Err(invalid(loc.clone(), format!("negative quantized_dimension {quantized_dimension}")));
    }
    let qd = quantized_dimension as usize;
    let zero_points = if zero_points.is_empty() { vec![0; scales.len()] } else { zero_points };
    if zero_points.len() != scales.len() {
        return Err(invalid(loc.clone(), format!("{} scales but {} zero points", scales.len(), zero_points.len())));
    }
    if scales.len() > 1 && shape.get(qd) != Some(&scales.len()) {
        return Err(invalid(
            loc.clone(),
            format!("{} per-channel scales along dimension {qd}, but the shape is {shape:?}", scales.len()),
        ));
    }
    Ok(Some(QuantParams { scales, zero_points, quantized_dimension: qd }))
}

/// Operators run in file order, so every tensor an operator reads must be a
/// constant, a graph input, a variable, or written by an earlier operator;
/// anything else is a cycle or a dangling reference. No tensor may be
/// written twice.
fn check_dataflow(si: usize, sg: &SubgraphDef, codes: &[OperatorCode]) -> Result<()> {
    let n = sg.tensors.len();
    // `Some(op)` = written by op, `Some(usize::MAX)` = available from the start.
    let mut producer: Vec<Option<usize>> = vec![None; n];
    for (i, t) in sg.tensors.iter().enumerate() {
        if t.data.is_some() || t.info.is_variable {
            producer[i] = Some(usize::MAX);
        }
    }
    // A lookup table, not `sg.inputs.contains`: a hostile file may list
    // many inputs and outputs, and the check must stay linear.
    let mut is_input = vec![false; n];
    for &i in &sg.inputs {
        producer[i] = Some(usize::MAX);
        is_input[i] = true;
    }
    let mut writer: Vec<Option<usize>> = vec![None; n];
    for (oi, op) in sg.operators.iter().enumerate() {
        for &t in &op.outputs {
            if writer[t].is_some() || is_input[t] || sg.tensors[t].data.is_some() {
                let name = codes.get(op.opcode_index).map(|c| c.name()).unwrap_or_default();
                return Err(invalid(
                    Location::Operator { subgraph: si, index: oi, op: name },
                    format!(
                        "writes tensor {t}, which is already a graph input, a constant or another operator's output"
                    ),
                ));
            }
            writer[t] = Some(oi);
        }
    }
    for (oi, op) in sg.operators.iter().enumerate() {
        for &t in op.inputs.iter().flatten() {
            let ready = producer[t].is_some();
            if !ready {
                let name = codes.get(op.opcode_index).map(|c| c.name()).unwrap_or_default();
                let why = match writer[t] {
                    Some(w) => format!(
                        "reads tensor {t} ('{}') before operator {w} writes it: the graph has a cycle or is out of order",
                        sg.tensors[t].info.name
                    ),
                    None => format!(
                        "reads tensor {t} ('{}'), which is neither an input, a constant, nor written by any operator",
                        sg.tensors[t].info.name
                    ),
                };
                return Err(invalid(Location::Operator { subgraph: si, index: oi, op: name }, why));
            }
        }
        for &t in &op.outputs {
            producer[t] = Some(oi);
        }
    }
    for &t in &sg.outputs {
        if producer[t].is_none() {
            return Err(invalid(
                Location::Subgraph(si),
                format!("output tensor {t} ('{}') is never written", sg.tensors[t].info.name),
            ));
        }
    }
    Ok(())
}
