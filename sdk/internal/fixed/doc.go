// Package fixed describes the encodings of package codec's fixed-width
// number codecs, so that package sdk can encode and decode them inline
// instead of calling through the codec.Codec interface: in Go compiled to
// Wasm every call costs more than the encoding itself (sdk/doc.go, "The hot
// path").
//
// It owns the description (Layout) and its encode and decode functions,
// and nothing else. It knows nothing of state or the host. It is internal
// so that only the codecs of package codec can declare a Layout: a codec
// outside sdk/... cannot name Token, so it cannot claim one by mistake.
package fixed
