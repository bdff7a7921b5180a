//! Element types of tensors.

use std::fmt;

/// A tensor's element type, with the numbers the .tflite format uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Float32,
    Float16,
    Int32,
    UInt8,
    Int64,
    String,
    Bool,
    Int16,
    Complex64,
    Int8,
    Float64,
    Complex128,
    UInt64,
    Resource,
    Variant,
    UInt32,
    UInt16,
    Int4,
    BFloat16,
}

impl DataType {
    /// The type for a `TensorType` number from the file.
    pub fn from_tflite(code: i8) -> Option<DataType> {
        use DataType::*;
        Some(match code {
            0 => Float32,
            1 => Float16,
            2 => Int32,
            3 => UInt8,
            4 => Int64,
            5 => String,
            6 => Bool,
            7 => Int16,
            8 => Complex64,
            9 => Int8,
            10 => Float64,
            11 => Complex128,
            12 => UInt64,
            13 => Resource,
            14 => Variant,
            15 => UInt32,
            16 => UInt16,
            17 => Int4,
            18 => BFloat16,
            _ => return None,
        })
    }

    /// Bytes per element; `None` for types without a fixed element size
    /// (strings, variants) and for sub-byte `Int4`. A resource tensor holds
    /// a variable's `i32` id, as TFLite's VAR_HANDLE writes it.
    pub fn size(self) -> Option<usize> {
        use DataType::*;
        Some(match self {
            Float32 | Int32 | UInt32 | Resource => 4,
            Float16 | Int16 | UInt16 | BFloat16 => 2,
            UInt8 | Int8 | Bool => 1,
            Int64 | Float64 | UInt64 | Complex64 => 8,
            Complex128 => 16,
            String | Variant | Int4 => return None,
        })
    }

    /// Bytes needed for `count` elements (Int4 packs two per byte).
    pub fn bytes_for(self, count: usize) -> Option<usize> {
        match self {
            DataType::Int4 => Some(count.div_ceil(2)),
            t => t.size()?.checked_mul(count),
        }
    }

    /// The lower-case name numpy and TFLite's Python API use.
    pub fn name(self) -> &'static str {
        use DataType::*;
        match self {
            Float32 => "float32",
            Float16 => "float16",
            Int32 => "int32",
            UInt8 => "uint8",
            Int64 => "int64",
            String => "string",
            Bool => "bool",
            Int16 => "int16",
            Complex64 => "complex64",
            Int8 => "int8",
            Float64 => "float64",
            Complex128 => "complex128",
            UInt64 => "uint64",
            Resource => "resource",
            Variant => "variant",
            UInt32 => "uint32",
            UInt16 => "uint16",
            Int4 => "int4",
            BFloat16 => "bfloat16",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Rust element types that map to one [`DataType`]: the typed views of a
/// tensor's bytes use this to refuse a mismatched type.
pub trait Element: bytemuck::Pod + Send + Sync + 'static {
    const DTYPE: DataType;
}

macro_rules! element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DataType = DataType::$d;
        }
    };
}
element!(f32, Float32);
element!(f64, Float64);
element!(i32, Int32);
element!(u8, UInt8);
element!(i64, Int64);
element!(i16, Int16);
element!(i8, Int8);
element!(u64, UInt64);
element!(u32, UInt32);
element!(u16, UInt16);
