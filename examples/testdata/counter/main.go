// Command counter is the test module of module upgrades through
// savepoints. Its operator "count" keeps a per-key count in value state
// "count" and emits "key=count"; the VERSION build tag variants change it:
//
//	(default) v1: emits "key=n"
//	v2:       same state, emits "key=n (v2)" — a compatible upgrade
//	mapkind:  registers "count" as map state — an incompatible upgrade
//	renamed:  keeps its count in "total" — state "count" cannot be mapped
package main

import (
	"strconv"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

type counter struct {
	n *sdk.ValueState[int64]
	m *sdk.MapState[string, int64]
}

func (c *counter) Open(ctx *sdk.Context) (err error) {
	switch variant {
	case "mapkind":
		c.m, err = sdk.NewMapState(ctx, "count", codec.String, codec.Int64)
	case "renamed":
		c.n, err = sdk.NewValueState(ctx, "total", codec.Int64)
	default:
		c.n, err = sdk.NewValueState(ctx, "count", codec.Int64)
	}
	return err
}

func (c *counter) Process(ctx *sdk.Context, r sdk.Record) error {
	var n int64
	if c.m != nil {
		v, _, err := c.m.Get("n")
		if err != nil {
			return err
		}
		n = v + 1
		if err := c.m.Put("n", n); err != nil {
			return err
		}
	} else {
		v, _, err := c.n.Get()
		if err != nil {
			return err
		}
		n = v + 1
		if err := c.n.Set(n); err != nil {
			return err
		}
	}
	out := string(r.Key) + "=" + strconv.FormatInt(n, 10)
	if variant == "v2" {
		out += " (v2)"
	}
	ctx.Emit(r.Key, []byte(out))
	return nil
}

func init() {
	sdk.Export("count", func() sdk.Operator { return &counter{} }, sdk.Keyed())
}

func main() {}
