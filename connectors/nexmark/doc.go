// Package nexmark is the Nexmark benchmark's data model and generator,
// faithful to github.com/nexmark/nexmark (itself derived from Apache Beam's
// Nexmark): Person, Auction and Bid events in the proportions 1:3:46, with
// the reference's id, price, string and time formulas, deterministic for a
// seed.
//
// Events travel as rows (package abi/row; the layout is documented at
// TimestampField) or as JSON. The package is pure Go without host
// dependencies, so that operators compiled to Wasm decode events with the
// same code the generator encodes them with; the "nexmark" source connector
// (package connectors) wraps the generator.
package nexmark
