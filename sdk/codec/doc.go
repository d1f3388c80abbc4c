// Package codec turns Go values into the bytes Weir keeps in keyed state and
// back.
//
// A Codec[T] writes a T into a Writer and reads it back from a Reader. Writers
// and Readers are reusable buffers owned by the caller (the SDK keeps one of
// each per operator instance), so encoding and decoding fixed-size values
// allocates nothing: a ValueState[int64] costs no garbage per record.
//
// The package offers:
//
//   - Raw ([]byte) and String: the bytes as they are;
//   - Int64, Int32, Int, Uint64, Uint32, Uint, Float64, Float32, Bool: fixed
//     width, big endian, with the sign bit flipped so that the byte order of
//     encodings is the numeric order (map state scans keys in byte order, so a
//     MapState[int64, V] iterates in ascending numeric order);
//   - JSON[T]: encoding/json, for convenience where speed does not matter;
//   - Struct: a codec for a small struct written field by field with the
//     Writer and Reader methods, without reflection;
//   - SliceOf: a codec for []T from a codec for T.
//
// Top-level Raw, String and JSON values take the whole encoding; inside a
// Struct, strings and byte slices are length-prefixed by the Writer, and
// nested codecs are written with Write and read with Read.
//
// Encodings are stored in checkpoints and savepoints: changing the codec of a
// state is a state schema change and must be done with care (decode the old
// format, or use a new state name).
//
// This package knows nothing about the SDK, the host or the ABI: it is plain
// Go and may be used by tests and tools. Its fixed-width number codecs
// declare their encoding to the SDK (sdk/internal/fixed), which then
// encodes them inline on the per-record path instead of calling Encode and
// Decode through the Codec interface; the bytes are the same.
package codec
