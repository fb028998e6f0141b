//! Fuzzing the exchange's receiving side: a real receiver in this process
//! is sent the peer's `DoPut` stream of pre-arrival records (a schema, then
//! batches, as the sender makes them) damaged at random: bytes of a
//! message's IPC header or body flipped, cut short or overwritten (often a
//! length or an offset), messages dropped, doubled or swapped, a foreign
//! schema or batch slipped in, the descriptor changed, or messages of
//! random bytes. The receiver must not panic (on any of its tasks), must
//! deliver to the engine only batches of the pre-arrival schema, and must
//! answer a refusal in words.
//!
//! Why proptest and not cargo-fuzz or AFL: both need a nightly compiler or
//! their own toolchain, which the project's machines and CI do not have.
//! proptest runs on stable as an ordinary `cargo test`, from a fixed seed
//! by default, shrinks a failure to a small input, and takes more cases
//! from `BORDERFLOW_FUZZ_CASES` for long runs (see `fuzz_config`).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightData, FlightDescriptor};
use borderflow_connectors::exchange::{Deliver, Delivery, ExchangeService, StatusHandle, serve_exchange};
use borderflow_types::{Direction, ExchangeKeys, PlateRead, pre_arrival_records, pre_arrival_schema};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tonic::Code;
use tonic::transport::Channel;

#[path = "../../engine/types/tests/fuzz_config/mod.rs"]
mod fuzz_config;
#[path = "../../engine/types/tests/sample_reads/mod.rs"]
mod sample_reads;

use sample_reads::sample_read;

const PEER: &str = "mohyliv-podilskyi";

/// Every panic in this test binary, on any thread (the receiver's tasks
/// included), in words.
fn panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    PANICS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(panics) = PANICS.get() {
                panics.lock().unwrap_or_else(|e| e.into_inner()).push(info.to_string());
            }
            previous(info);
        }));
        Mutex::new(Vec::new())
    })
}

/// A receiver for the peer's records, and a client to send it streams.
struct Receiver {
    runtime: tokio::runtime::Runtime,
    client: FlightServiceClient<Channel>,
    delivered: Arc<Mutex<Vec<RecordBatch>>>,
}

fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        panics();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let delivered: Arc<Mutex<Vec<RecordBatch>>> = Arc::default();
        let sink = delivered.clone();
        let deliver: Deliver = Arc::new(move |delivery: Delivery| {
            let rows = delivery.batch.num_rows();
            sink.lock().expect("delivered").push(delivery.batch);
            let _ = delivery.done.send(Ok((rows, 0)));
            true
        });
        let client = runtime.block_on(async {
            let service = ExchangeService::new(PEER, deliver, StatusHandle::new(PEER));
            let address = serve_exchange("127.0.0.1:0", None, service).await.expect("receiver");
            let channel = Channel::from_shared(format!("http://{address}")).expect("address").connect().await.expect("client");
            FlightServiceClient::new(channel)
        });
        Receiver { runtime, client, delivered }
    })
}

fn exit(i: u32) -> PlateRead {
    sample_read(i, PEER, Direction::Exit)
}

/// The stream a sender makes: the schema (with the descriptor), then two
/// batches, each with its outbox number.
fn valid_stream() -> Vec<FlightData> {
    let keys = ExchangeKeys::single(b"a key both services share");
    let batches = vec![pre_arrival_records(&[exit(1)], &keys), pre_arrival_records(&[exit(2), exit(3)], &keys)];
    let mut stream = arrow_flight::utils::batches_to_flight_data(&pre_arrival_schema(), batches).expect("encode");
    stream[0] = stream[0].clone().with_descriptor(FlightDescriptor::new_path(vec!["pre_arrival".into(), PEER.into()]));
    for (seq, message) in stream.iter_mut().skip(1).enumerate() {
        *message = message.clone().with_app_metadata((seq + 1).to_string().into_bytes());
    }
    stream
}

/// A schema and a batch of a one-column table: not pre-arrival records.
fn foreign_messages() -> Vec<FlightData> {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).expect("batch");
    arrow_flight::utils::batches_to_flight_data(&schema, vec![batch]).expect("encode")
}

/// Which part of a message a damage goes to.
#[derive(Clone, Copy, Debug)]
enum Part {
    Header,
    Body,
}

/// One way of damaging the stream. Messages and byte positions are taken
/// modulo the number there are, so that a failing input can be written
/// down as a regression test.
#[derive(Clone, Debug)]
enum Damage {
    Flip(usize, Part, Vec<(usize, u8)>),
    Cut(usize, Part, usize),
    /// Four bytes overwritten: a length, an offset or a count, often.
    Word(usize, Part, usize, u32),
    /// Eight bytes of the header overwritten (the body length and buffer
    /// offsets and lengths are 64-bit).
    Long(usize, usize, i64),
    Drop(usize),
    Double(usize),
    Swap(usize, usize),
    /// A foreign schema or batch inserted.
    Foreign(usize, usize),
    Descriptor(Vec<String>),
    Random(usize, Vec<u8>, Vec<u8>),
}

/// A descriptor's path part: the right ones, or others.
fn path_part() -> impl Strategy<Value = String> {
    let character = proptest::sample::select(&['a', 'o', 'p', '_', '-', '/', 'é', ' '][..]);
    prop_oneof![
        Just("pre_arrival".to_string()),
        Just(PEER.to_string()),
        Just("otaci".to_string()),
        proptest::collection::vec(character, 0..20).prop_map(String::from_iter),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![3 => Just(Part::Header), 1 => Just(Part::Body)]
}

fn damage() -> impl Strategy<Value = Damage> {
    let word = prop_oneof![any::<u32>(), Just(u32::MAX), Just(0x7fff_ffff), Just(0x8000_0000), Just(0), Just(1), Just(64)];
    let long = prop_oneof![any::<i64>(), Just(-1i64), Just(i64::MAX), Just(1 << 40), Just(1 << 31), Just(4096)];
    prop_oneof![
        3 => (any::<usize>(), part(), proptest::collection::vec((any::<usize>(), 1..=255u8), 1..4)).prop_map(|(m, p, flips)| Damage::Flip(m, p, flips)),
        1 => (any::<usize>(), part(), any::<usize>()).prop_map(|(m, p, at)| Damage::Cut(m, p, at)),
        3 => (any::<usize>(), part(), any::<usize>(), word).prop_map(|(m, p, at, value)| Damage::Word(m, p, at, value)),
        3 => (any::<usize>(), any::<usize>(), long).prop_map(|(m, at, value)| Damage::Long(m, at, value)),
        1 => any::<usize>().prop_map(Damage::Drop),
        1 => any::<usize>().prop_map(Damage::Double),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Swap(a, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(at, which)| Damage::Foreign(at, which)),
        1 => proptest::collection::vec(path_part(), 0..4).prop_map(Damage::Descriptor),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 0..200), proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(at, header, body)| Damage::Random(at, header, body)),
    ]
}

fn bytes_of(message: &mut FlightData, part: Part) -> Vec<u8> {
    match part {
        Part::Header => message.data_header.to_vec(),
        Part::Body => message.data_body.to_vec(),
    }
}

fn set_bytes(message: &mut FlightData, part: Part, bytes: Vec<u8>) {
    match part {
        Part::Header => message.data_header = bytes.into(),
        Part::Body => message.data_body = bytes.into(),
    }
}

fn apply(stream: &mut Vec<FlightData>, damage: &Damage) {
    if stream.is_empty() {
        return;
    }
    let pick = |at: &usize, stream: &Vec<FlightData>| at % stream.len();
    match damage {
        Damage::Flip(m, part, flips) => {
            let m = pick(m, stream);
            let mut bytes = bytes_of(&mut stream[m], *part);
            if !bytes.is_empty() {
                for (at, mask) in flips {
                    let i = at % bytes.len();
                    bytes[i] ^= mask;
                }
            }
            set_bytes(&mut stream[m], *part, bytes);
        }
        Damage::Cut(m, part, at) => {
            let m = pick(m, stream);
            let mut bytes = bytes_of(&mut stream[m], *part);
            bytes.truncate(at % (bytes.len() + 1));
            set_bytes(&mut stream[m], *part, bytes);
        }
        Damage::Word(m, part, at, value) => {
            let m = pick(m, stream);
            let mut bytes = bytes_of(&mut stream[m], *part);
            if bytes.len() >= 4 {
                let i = at % (bytes.len() - 3);
                bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
            set_bytes(&mut stream[m], *part, bytes);
        }
        Damage::Long(m, at, value) => {
            let m = pick(m, stream);
            let mut bytes = bytes_of(&mut stream[m], Part::Header);
            if bytes.len() >= 8 {
                // Flatbuffer fields are aligned: try an aligned place.
                let i = (at % (bytes.len() - 7).div_ceil(8)) * 8;
                bytes[i..i + 8].copy_from_slice(&value.to_le_bytes());
            }
            set_bytes(&mut stream[m], Part::Header, bytes);
        }
        Damage::Drop(m) => {
            stream.remove(pick(m, stream));
        }
        Damage::Double(m) => {
            let m = pick(m, stream);
            stream.insert(m, stream[m].clone());
        }
        Damage::Swap(a, b) => {
            let (a, b) = (pick(a, stream), pick(b, stream));
            stream.swap(a, b);
        }
        Damage::Foreign(at, which) => {
            let foreign = foreign_messages();
            let message = foreign[which % foreign.len()].clone();
            stream.insert(at % (stream.len() + 1), message);
        }
        Damage::Descriptor(path) => {
            stream[0].flight_descriptor = Some(FlightDescriptor::new_path(path.clone()));
        }
        Damage::Random(at, header, body) => {
            let message = FlightData { data_header: header.clone().into(), data_body: body.clone().into(), ..FlightData::default() };
            stream.insert(at % (stream.len() + 1), message);
        }
    }
}

/// Sends `stream` and reads the receiver's answer: the acknowledgements,
/// and the refusal if there is one.
fn send(stream: Vec<FlightData>) -> (Vec<Vec<u8>>, Option<tonic::Status>) {
    let receiver = receiver();
    let mut client = receiver.client.clone();
    let call = async move {
        let mut answers = match client.do_put(futures::stream::iter(stream)).await {
            Ok(answers) => answers.into_inner(),
            Err(status) => return (Vec::new(), Some(status)),
        };
        let mut acks = Vec::new();
        loop {
            match answers.message().await {
                Ok(Some(ack)) => acks.push(ack.app_metadata.to_vec()),
                Ok(None) => return (acks, None),
                Err(status) => return (acks, Some(status)),
            }
        }
    };
    receiver
        .runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), call).await })
        .unwrap_or_else(|_| (Vec::new(), Some(tonic::Status::deadline_exceeded("the receiver did not answer within 20 s"))))
}

/// One stream at a time: the receiver's deliveries are told apart by when.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn check(damages: &[Damage]) -> Result<(), TestCaseError> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let receiver = receiver();
    let mut stream = valid_stream();
    for damage in damages {
        apply(&mut stream, damage);
    }
    receiver.delivered.lock().expect("delivered").clear();
    let panics_before = panics().lock().unwrap_or_else(|e| e.into_inner()).len();
    let (acks, refusal) = send(stream);
    let panicked: Vec<String> = panics().lock().unwrap_or_else(|e| e.into_inner())[panics_before..].to_vec();
    prop_assert!(panicked.is_empty(), "the receiver panicked: {panicked:?}");
    if let Some(status) = &refusal {
        prop_assert!(
            matches!(status.code(), Code::PermissionDenied | Code::InvalidArgument),
            "a refusal, not {:?}: {}",
            status.code(),
            status.message()
        );
        prop_assert!(status.message().len() > 10, "the refusal says why: {:?}", status.message());
    }
    let delivered = receiver.delivered.lock().expect("delivered").clone();
    let expected = pre_arrival_schema();
    for batch in &delivered {
        let schema = batch.schema();
        prop_assert_eq!(schema.fields(), expected.fields());
    }
    prop_assert!(acks.len() >= delivered.len(), "{} batches delivered, {} acknowledged", delivered.len(), acks.len());
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_config::config(500))]

    #[test]
    fn damaged_pre_arrival_streams_are_taken_or_refused_in_words(damages in proptest::collection::vec(damage(), 1..3)) {
        check(&damages)?;
    }
}

#[test]
fn the_valid_stream_is_taken_whole() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let receiver = receiver();
    receiver.delivered.lock().expect("delivered").clear();
    let (acks, refusal) = send(valid_stream());
    assert!(refusal.is_none(), "{refusal:?}");
    assert_eq!(acks, vec![b"1".to_vec(), b"2".to_vec()]);
}

// Inputs the fuzzer found before the receiver checked each message against
// the bytes it brings (`borderflow_engine::ipc_check`): arrow decoded what
// the peer's message declared, and panicked on the receiver's tasks.

/// A word of the schema message's header overwritten: a column whose type
/// is NONE (arrow: "not implemented: Type NONE not supported").
#[test]
fn regression_a_schema_with_an_impossible_type() {
    check(&[Damage::Word(0, Part::Header, 2898553328887874517, 1)]).expect("refused in words");
}

/// A word of a batch's header overwritten: a validity bitmap shorter than
/// the column's values (arrow: "buffer not large enough").
#[test]
fn regression_a_validity_bitmap_shorter_than_its_values() {
    check(&[Damage::Word(34864393237129219, Part::Header, 4705528096783801, 16777216)]).expect("refused in words");
}

/// A 64-bit word of the first batch's header (a buffer's offset) set to
/// 4096 or −1: a buffer past the message body (arrow: "the offset of the
/// new Buffer cannot exceed the existing length").
#[test]
fn regression_a_batch_buffer_past_the_body() {
    check(&[Damage::Long(1, 29, 4096)]).expect("refused in words");
    check(&[Damage::Long(1, 29, -1)]).expect("refused in words");
}
