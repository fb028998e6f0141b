//! Arrow IPC from outside this process, checked before arrow decodes it.
//!
//! The write-ahead log's segments (read back from disk or an object store)
//! and the peer post's Flight data hold Arrow IPC messages. arrow-ipc
//! trusts the lengths and offsets a message declares: it allocates a
//! message's declared metadata and body length before reading them (a
//! damaged length asks for gigabytes), panics on a buffer that points past
//! the body, on a type it does not know (an integer 33 bits wide), on a
//! list without its child, a validity bitmap too short for its values or
//! an offsets buffer that is not a whole number of offsets,
//! and allocates a compressed buffer's declared uncompressed length. So
//! every message is checked here first, against the bytes actually in
//! hand, and refused with an error that says what is wrong:
//!
//! - the message must be a well-formed flatbuffer whose body fits in the
//!   bytes there are;
//! - a schema may use only the types the engine's tables use: booleans,
//!   integers, floats, (large) text and binary, dates, timestamps, structs
//!   and lists of them; no dictionaries, no big-endian data;
//! - a record batch must come after its schema, be uncompressed, and have a
//!   field node (values 0 to 2³¹−1, nulls no more than values) and buffers
//!   inside the body for every column, in the order arrow reads them: a
//!   validity bitmap long enough for the values when there are nulls, and
//!   offsets or fixed-width values a whole number of them.
//!
//! [`check_stream`] checks an IPC stream (the log's records);
//! [`IpcCheck::message`] one message at a time (Flight data).

use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::{self, MessageHeader};

/// Values one array may declare: arrow's 32-bit offsets address no more.
const MAX_VALUES: i64 = i32::MAX as i64;

/// Fields nested deeper than this are refused (the engine's nest one level).
const MAX_DEPTH: usize = 8;

/// Checks a sequence of IPC messages: the schema a stream declares is kept
/// to check its record batches against.
#[derive(Debug, Default)]
pub struct IpcCheck {
    schema: Option<Schema>,
}

impl IpcCheck {
    pub fn new() -> Self {
        IpcCheck::default()
    }

    /// Checks one message: its flatbuffer `header` and a body of
    /// `body_len` bytes, of which the message declares the first ones its
    /// own (their number is returned); its buffers must lie within those.
    pub fn message(&mut self, header: &[u8], body_len: usize) -> Result<usize, String> {
        let message = ipc::root_as_message(header).map_err(|e| format!("not an Arrow IPC message ({e})"))?;
        let declared = message.bodyLength();
        let declared = usize::try_from(declared)
            .ok()
            .filter(|&d| d <= body_len)
            .ok_or_else(|| format!("the message declares a body of {declared} bytes; {body_len} are there"))?;
        match message.header_type() {
            MessageHeader::NONE => {}
            MessageHeader::Schema => {
                let schema = message.header_as_schema().ok_or("a schema message without its schema")?;
                check_schema(schema)?;
                self.schema = Some(ipc::convert::fb_to_schema(schema));
            }
            MessageHeader::RecordBatch => {
                let batch = message.header_as_record_batch().ok_or("a record batch message without its batch")?;
                let schema = self.schema.as_ref().ok_or("a record batch before its schema")?;
                // arrow's stream reader reads the declared body, no more.
                check_batch(schema, batch, declared)?;
            }
            MessageHeader::DictionaryBatch => return Err("dictionary batches are not accepted (no column is dictionary-encoded)".into()),
            other => return Err(format!("unexpected message type {}", other.variant_name().unwrap_or("(unknown)"))),
        }
        Ok(declared)
    }
}

/// Checks an Arrow IPC stream (`[0xFFFFFFFF] length metadata body`, …,
/// up to an end marker or the end of the bytes) as arrow's `StreamReader`
/// reads it. Errors name the byte offset in the stream.
pub fn check_stream(bytes: &[u8]) -> Result<(), String> {
    let mut check = IpcCheck::new();
    let mut at = 0;
    loop {
        let start = at;
        let word = |at: usize| bytes.get(at..at + 4).map(|w| [w[0], w[1], w[2], w[3]]);
        // Fewer than 4 bytes left: the reader takes it as the end of the stream.
        let Some(mut length) = word(at) else { return Ok(()) };
        at += 4;
        if length == [0xff; 4] {
            length = word(at).ok_or_else(|| format!("byte {start} of the Arrow IPC stream: the stream ends inside a message length"))?;
            at += 4;
        }
        let length = i32::from_le_bytes(length);
        if length == 0 {
            return Ok(());
        }
        let metadata = usize::try_from(length)
            .ok()
            .and_then(|length| bytes.get(at..at.checked_add(length)?))
            .ok_or_else(|| format!("byte {start} of the Arrow IPC stream: a message of {length} bytes, {} left", bytes.len() - at))?;
        at += metadata.len();
        let body = check.message(metadata, bytes.len() - at).map_err(|e| format!("byte {start} of the Arrow IPC stream: {e}"))?;
        at += body;
    }
}

fn check_schema(schema: ipc::Schema<'_>) -> Result<(), String> {
    if schema.endianness() != ipc::Endianness::Little {
        return Err("big-endian data is not accepted".into());
    }
    let fields = schema.fields().ok_or("a schema without its list of fields")?;
    fields.iter().try_for_each(|field| check_field(field, 0))
}

/// A field of a type arrow reads without panicking, and the engine uses.
fn check_field(field: ipc::Field<'_>, depth: usize) -> Result<(), String> {
    let name = field.name().unwrap_or("(unnamed)");
    if depth > MAX_DEPTH {
        return Err(format!("column `{name}` is nested more than {MAX_DEPTH} levels deep"));
    }
    if field.dictionary().is_some() {
        return Err(format!("column `{name}`: dictionary-encoded columns are not accepted"));
    }
    let children = field.children();
    let accepted = match field.type_type() {
        ipc::Type::Bool | ipc::Type::Binary | ipc::Type::LargeBinary | ipc::Type::Utf8 | ipc::Type::LargeUtf8 => true,
        ipc::Type::Int => field.type_as_int().is_some_and(|int| matches!(int.bitWidth(), 8 | 16 | 32 | 64)),
        ipc::Type::FloatingPoint => field
            .type_as_floating_point()
            .is_some_and(|float| matches!(float.precision(), ipc::Precision::HALF | ipc::Precision::SINGLE | ipc::Precision::DOUBLE)),
        ipc::Type::Date => field.type_as_date().is_some_and(|date| matches!(date.unit(), ipc::DateUnit::DAY | ipc::DateUnit::MILLISECOND)),
        ipc::Type::Timestamp => field.type_as_timestamp().is_some_and(|timestamp| {
            matches!(timestamp.unit(), ipc::TimeUnit::SECOND | ipc::TimeUnit::MILLISECOND | ipc::TimeUnit::MICROSECOND | ipc::TimeUnit::NANOSECOND)
        }),
        ipc::Type::Struct_ => {
            if let Some(children) = children {
                children.iter().try_for_each(|child| check_field(child, depth + 1))?;
            }
            true
        }
        ipc::Type::List | ipc::Type::LargeList => match children {
            Some(children) if children.len() == 1 => {
                check_field(children.get(0), depth + 1)?;
                true
            }
            _ => false,
        },
        _ => false,
    };
    if !accepted {
        let kind = field.type_type().variant_name().unwrap_or("(unknown)");
        return Err(format!("column `{name}`: its Arrow type ({kind}) is malformed or not accepted"));
    }
    Ok(())
}

fn check_batch(schema: &Schema, batch: ipc::RecordBatch<'_>, body_len: usize) -> Result<(), String> {
    if batch.compression().is_some() {
        return Err("compressed record batches are not accepted".into());
    }
    if batch.variadicBufferCounts().is_some_and(|counts| !counts.is_empty()) {
        return Err("variadic buffers are not accepted (no column is a view type)".into());
    }
    let rows = batch.length();
    if !(0..=MAX_VALUES).contains(&rows) {
        return Err(format!("the batch declares {rows} rows"));
    }
    let nodes = batch.nodes().ok_or("a record batch without its field nodes")?;
    let buffers = batch.buffers().ok_or("a record batch without its buffers")?;
    let mut walk = Walk { nodes: nodes.iter(), buffers: buffers.iter(), body_len };
    schema.fields().iter().try_for_each(|field| walk.field(field))
}

/// The field nodes and buffers of a batch, taken in the order arrow's
/// reader takes them: a field's node, its own buffers, then its children.
struct Walk<N, B> {
    nodes: N,
    buffers: B,
    body_len: usize,
}

impl<'a, N: Iterator<Item = &'a ipc::FieldNode>, B: Iterator<Item = &'a ipc::Buffer>> Walk<N, B> {
    fn field(&mut self, field: &Field) -> Result<(), String> {
        let name = field.name();
        let node = self.nodes.next().ok_or_else(|| format!("column `{name}`: no field node"))?;
        let (values, nulls) = (node.length(), node.null_count());
        if !(0..=MAX_VALUES).contains(&values) || !(0..=values).contains(&nulls) {
            return Err(format!("column `{name}`: {values} values with {nulls} nulls"));
        }
        let own_buffers = match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => 3,
            DataType::Struct(_) => 1,
            _ => 2,
        };
        // Buffer 1 holds offsets or fixed-width values: arrow reads it as a
        // slice of them, and a length that is not a whole number of them panics.
        let width = match field.data_type() {
            DataType::Utf8 | DataType::Binary | DataType::List(_) => Some(4),
            DataType::LargeUtf8 | DataType::LargeBinary | DataType::LargeList(_) => Some(8),
            other => other.primitive_width(),
        };
        for index in 0..own_buffers {
            let buffer = self.buffers.next().ok_or_else(|| format!("column `{name}`: buffer {index} is missing"))?;
            let (offset, length) = (buffer.offset(), buffer.length());
            let inside = offset >= 0 && length >= 0 && offset.checked_add(length).is_some_and(|end| end as u64 <= self.body_len as u64);
            if !inside {
                return Err(format!(
                    "column `{name}`: buffer {index} ({length} bytes at {offset}) is outside the body of {} bytes",
                    self.body_len
                ));
            }
            if let Some(width) = width.filter(|&width| index == 1 && length % width as i64 != 0) {
                return Err(format!("column `{name}`: buffer 1 of {length} bytes is not a whole number of {width}-byte values"));
            }
            if index == 0 && nulls > 0 && length.saturating_mul(8) < values {
                return Err(format!("column `{name}`: a validity bitmap of {length} bytes for {values} values"));
            }
        }
        match field.data_type() {
            DataType::List(child) | DataType::LargeList(child) => self.field(child),
            DataType::Struct(children) => children.iter().try_for_each(|child| self.field(child)),
            _ => Ok(()),
        }
    }
}
