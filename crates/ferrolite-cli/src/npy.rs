//! .npy files in and out, in the tensor's own element type.

use std::io::Read;
use std::path::Path;

use ferrolite::DataType;
use npyz::WriterBuilder;

/// An array read from a .npy file: element type, shape, little-endian bytes.
pub struct NpyArray {
    pub dtype: DataType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

fn dtype_of(descr: &str) -> Option<(DataType, bool /*big endian*/)> {
    let (endian, code) = descr.split_at(1);
    let big = endian == ">";
    let t = match code {
        "f4" => DataType::Float32,
        "f2" => DataType::Float16,
        "f8" => DataType::Float64,
        "i1" => DataType::Int8,
        "u1" => DataType::UInt8,
        "i2" => DataType::Int16,
        "u2" => DataType::UInt16,
        "i4" => DataType::Int32,
        "u4" => DataType::UInt32,
        "i8" => DataType::Int64,
        "u8" => DataType::UInt64,
        "b1" => DataType::Bool,
        _ => return None,
    };
    Some((t, big))
}

pub fn read(path: &Path) -> Result<NpyArray, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file))
        .map_err(|e| format!("{} is not a valid .npy file: {e}", path.display()))?;
    if npy.order() == npyz::Order::Fortran {
        return Err(format!("{}: Fortran-order arrays are not supported; save with order='C'", path.display()));
    }
    let descr = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => return Err(format!("{}: structured dtype {other:?} is not supported", path.display())),
    };
    let (dtype, big) = dtype_of(&descr).ok_or_else(|| format!("{}: unsupported dtype {descr}", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let count: usize = shape.iter().product();
    let size = dtype.size().unwrap_or(1);
    let mut bytes = vec![0u8; count * size];
    npy.into_inner()
        .read_exact(&mut bytes)
        .map_err(|e| format!("{}: data is shorter than its shape {shape:?} says: {e}", path.display()))?;
    if big && size > 1 {
        for c in bytes.chunks_exact_mut(size) {
            c.reverse();
        }
    }
    Ok(NpyArray { dtype, shape, bytes })
}

fn write_typed<T>(path: &Path, shape: &[usize], bytes: &[u8]) -> Result<(), String>
where
    T: npyz::AutoSerialize + bytemuck::Pod,
{
    let values: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = npyz::WriteOptions::<_>::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    w.extend(values).map_err(io)?;
    w.finish().map_err(io)
}

/// Write little-endian `bytes` of `dtype` with `shape` as a .npy file.
pub fn write(path: &Path, dtype: DataType, shape: &[usize], bytes: &[u8]) -> Result<(), String> {
    match dtype {
        DataType::Float32 => write_typed::<f32>(path, shape, bytes),
        DataType::Float64 => write_typed::<f64>(path, shape, bytes),
        DataType::Int8 => write_typed::<i8>(path, shape, bytes),
        DataType::UInt8 => write_typed::<u8>(path, shape, bytes),
        DataType::Int16 => write_typed::<i16>(path, shape, bytes),
        DataType::UInt16 => write_typed::<u16>(path, shape, bytes),
        DataType::Int32 => write_typed::<i32>(path, shape, bytes),
        DataType::UInt32 => write_typed::<u32>(path, shape, bytes),
        DataType::Int64 => write_typed::<i64>(path, shape, bytes),
        DataType::UInt64 => write_typed::<u64>(path, shape, bytes),
        DataType::Bool => {
            let values: Vec<bool> = bytes.iter().map(|&b| b != 0).collect();
            let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
            let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
            let file = std::fs::File::create(path).map_err(io)?;
            let mut w = npyz::WriteOptions::<_>::new()
                .default_dtype()
                .shape(&shape)
                .writer(std::io::BufWriter::new(file))
                .begin_nd()
                .map_err(io)?;
            w.extend(values).map_err(io)?;
            w.finish().map_err(io)
        }
        other => Err(format!("cannot write {other} tensors as .npy")),
    }
}
