//! The few ONNX protobuf messages an exported backbone needs, written by hand.
//!
//! Protocol buffers' wire format is small: every field is a key (`field << 3 | wire type`) then a
//! varint, a fixed 32-bit value or a length-prefixed byte string; an embedded message is a byte
//! string. Field numbers are those of `onnx.proto` (onnx/onnx, IR version 7).

/// One message being written; fields are appended in call order (protobuf allows any order).
#[derive(Default, Clone, Debug)]
pub struct Msg(Vec<u8>);

const VARINT: u64 = 0;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, field: u64, wire: u64) {
        varint(&mut self.0, (field << 3) | wire);
    }

    /// An `int32`/`int64`/enum field (negative values as ten-byte two's complement, as protobuf
    /// encodes them).
    pub fn int(mut self, field: u64, v: i64) -> Self {
        self.key(field, VARINT);
        varint(&mut self.0, v as u64);
        self
    }

    pub fn float(mut self, field: u64, v: f32) -> Self {
        self.key(field, FIXED32);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(mut self, field: u64, b: &[u8]) -> Self {
        self.key(field, LEN);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn string(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    pub fn msg(self, field: u64, m: &Msg) -> Self {
        self.bytes(field, &m.0)
    }

    /// A repeated `int64` field, packed (one length-prefixed run of varints).
    pub fn packed_ints(self, field: u64, vs: &[i64]) -> Self {
        let mut run = Vec::new();
        for &v in vs {
            varint(&mut run, v as u64);
        }
        self.bytes(field, &run)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// `onnx.proto` field numbers and enum values used by the exporter.
pub mod field {
    pub mod model {
        pub const IR_VERSION: u64 = 1;
        pub const PRODUCER_NAME: u64 = 2;
        pub const PRODUCER_VERSION: u64 = 3;
        pub const DOC_STRING: u64 = 6;
        pub const GRAPH: u64 = 7;
        pub const OPSET_IMPORT: u64 = 8;
        pub const METADATA_PROPS: u64 = 14;
    }
    pub mod opset {
        pub const DOMAIN: u64 = 1;
        pub const VERSION: u64 = 2;
    }
    pub mod entry {
        pub const KEY: u64 = 1;
        pub const VALUE: u64 = 2;
    }
    pub mod graph {
        pub const NODE: u64 = 1;
        pub const NAME: u64 = 2;
        pub const INITIALIZER: u64 = 5;
        pub const INPUT: u64 = 11;
        pub const OUTPUT: u64 = 12;
    }
    pub mod node {
        pub const INPUT: u64 = 1;
        pub const OUTPUT: u64 = 2;
        pub const NAME: u64 = 3;
        pub const OP_TYPE: u64 = 4;
        pub const ATTRIBUTE: u64 = 5;
    }
    pub mod attr {
        pub const NAME: u64 = 1;
        pub const F: u64 = 2;
        pub const I: u64 = 3;
        pub const INTS: u64 = 8;
        pub const TYPE: u64 = 20;
        /// `AttributeProto.AttributeType`.
        pub const FLOAT: i64 = 1;
        pub const INT: i64 = 2;
        pub const INTS_TYPE: i64 = 7;
    }
    pub mod tensor {
        pub const DIMS: u64 = 1;
        pub const DATA_TYPE: u64 = 2;
        pub const NAME: u64 = 8;
        pub const RAW_DATA: u64 = 9;
        /// `TensorProto.DataType.FLOAT`.
        pub const FLOAT: i64 = 1;
    }
    pub mod value_info {
        pub const NAME: u64 = 1;
        pub const TYPE: u64 = 2;
    }
    pub mod type_proto {
        pub const TENSOR_TYPE: u64 = 1;
        pub const ELEM_TYPE: u64 = 1;
        pub const SHAPE: u64 = 2;
    }
    pub mod dim {
        pub const DIM: u64 = 1;
        pub const VALUE: u64 = 1;
        pub const PARAM: u64 = 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_match_protobufs_encoding() {
        // protobuf's documentation example: field 1 = 150 is 08 96 01.
        assert_eq!(Msg::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        // field 2 = "testing": 12 07 74 65 73 74 69 6e 67.
        assert_eq!(
            Msg::new().string(2, "testing").into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        // packed [3, 270, 86942] in field 4: 22 06 03 8e 02 9e a7 05.
        assert_eq!(
            Msg::new().packed_ints(4, &[3, 270, 86942]).into_bytes(),
            [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]
        );
        // -1 as an int64 is ten bytes; 1.0f32 is fixed32 0000803f.
        assert_eq!(Msg::new().int(1, -1).into_bytes().len(), 1 + 10);
        assert_eq!(
            Msg::new().float(2, 1.0).into_bytes(),
            [0x15, 0x00, 0x00, 0x80, 0x3f]
        );
        // field 20 needs a two-byte key.
        assert_eq!(Msg::new().int(20, 2).into_bytes(), [0xa0, 0x01, 0x02]);
    }
}
