package connectors

import (
	"fmt"

	"github.com/weirstream/weir/abi"
)

// nextRecord decodes the next event of a sink's input batch, which the Sink
// contract says holds only records; any other event is a runtime bug and is
// reported rather than skipped.
func nextRecord(d *abi.Decoder, ev *abi.Event) error {
	off := d.Offset()
	if err := d.Next(ev); err != nil {
		return err
	}
	if ev.Kind != abi.KindRecord {
		return fmt.Errorf("sink input: %v event at offset %d, want records only", ev.Kind, off)
	}
	return nil
}
