package main

// module commands.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/weirstream/weir/platform/registry"
)

func moduleCommands() []command {
	return []command{
		{verb: "upload", args: "NAME FILE.wasm", summary: "upload a module as the next version of NAME (validated by the server first)", minArgs: 2, maxArgs: 2, run: cmdModuleUpload},
		{verb: "list", summary: "list module names with their latest versions", maxArgs: 0, run: cmdModuleList},
		{verb: "get", args: "NAME [VERSION]", summary: "list a module's versions, or show one (a number, latest or sha256:<hex>)", minArgs: 1, maxArgs: 2, run: cmdModuleGet},
		{verb: "download", args: "NAME VERSION --out FILE", summary: "save a module version's bytes (checked against its digest); --out - writes to stdout", minArgs: 2, maxArgs: 2,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.out, "out", "", "the file to write (required; - for stdout)")
			}, run: cmdModuleDownload},
		{verb: "delete", args: "NAME [VERSION]", summary: "delete a module version, or every version of NAME (refused while a job uses it)", minArgs: 1, maxArgs: 2, run: cmdModuleDelete},
	}
}

func operatorList(ops []registry.Operator) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = op.Name
		if op.Keyed {
			parts[i] += " (keyed)"
		}
	}
	return strings.Join(parts, ", ")
}

func printVersion(w io.Writer, v registry.Version) {
	fmt.Fprintf(w, "module\t%s\n", v.Ref())
	fmt.Fprintf(w, "digest\t%s\n", v.Digest)
	fmt.Fprintf(w, "size\t%s\n", formatSize(v.Size))
	fmt.Fprintf(w, "abi version\t%d\n", v.ABIVersion)
	fmt.Fprintf(w, "operators\t%s\n", operatorList(v.Operators))
	fmt.Fprintf(w, "created\t%s\n", formatTime(&v.CreatedAt))
}

// readInput reads a file named on the command line; a file that cannot be
// read is a usage error.
func readInput(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return b, nil
}

func cmdModuleUpload(ctx context.Context, r *runCtx) error {
	wasm, err := readInput(r.args[1])
	if err != nil {
		return err
	}
	v, created, err := r.api.UploadModule(ctx, r.args[0], wasm)
	if err != nil {
		return err
	}
	return r.emit(v, func(w io.Writer) {
		if !created {
			fmt.Fprintf(w, "(these bytes already are %s: nothing new was stored)\n", v.Ref())
		}
		printVersion(w, v)
	})
}

func cmdModuleList(ctx context.Context, r *runCtx) error {
	names, err := r.api.Modules(ctx)
	if err != nil {
		return err
	}
	return r.emit(names, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tLATEST\tVERSIONS\tSIZE\tOPERATORS\tCREATED")
		for _, n := range names {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", n.Name, n.Latest.Version, n.Versions, formatSize(n.Latest.Size), operatorList(n.Latest.Operators), formatTime(&n.Latest.CreatedAt))
		}
	})
}

func cmdModuleGet(ctx context.Context, r *runCtx) error {
	if len(r.args) == 2 {
		v, err := r.api.ModuleVersion(ctx, r.args[0], r.args[1])
		if err != nil {
			return err
		}
		return r.emit(v, func(w io.Writer) { printVersion(w, v) })
	}
	m, err := r.api.Module(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(m, func(w io.Writer) {
		fmt.Fprintln(w, "VERSION\tDIGEST\tSIZE\tABI\tOPERATORS\tCREATED")
		for _, v := range m.Versions {
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\n", v.Version, v.Digest, formatSize(v.Size), v.ABIVersion, operatorList(v.Operators), formatTime(&v.CreatedAt))
		}
	})
}

// cmdModuleDownload resolves the version first and downloads it by number,
// so "latest" cannot move between the two requests, and checks the bytes
// against the digest.
func cmdModuleDownload(ctx context.Context, r *runCtx) error {
	if r.o.out == "" {
		return usagef("--out FILE is required (- for stdout)")
	}
	v, err := r.api.ModuleVersion(ctx, r.args[0], r.args[1])
	if err != nil {
		return err
	}
	b, err := r.api.ModuleWasm(ctx, v.Name, strconv.Itoa(v.Version))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != v.Digest {
		return fmt.Errorf("%s: the server sent %d bytes with digest %s, not the version's %s", v.Ref(), len(b), got, v.Digest)
	}
	if r.o.out == "-" {
		_, err := r.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(r.o.out, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", r.o.out, err)
	}
	return r.emit(v, func(w io.Writer) {
		fmt.Fprintf(w, "wrote %s (%s, %s) to %s\n", v.Ref(), formatSize(v.Size), v.Digest, r.o.out)
	})
}

func cmdModuleDelete(ctx context.Context, r *runCtx) error {
	if len(r.args) == 2 {
		if err := r.api.DeleteModuleVersion(ctx, r.args[0], r.args[1]); err != nil {
			return err
		}
		return r.done("module %s version %s deleted", r.args[0], r.args[1])
	}
	if err := r.api.DeleteModule(ctx, r.args[0]); err != nil {
		return err
	}
	return r.done("module %s deleted (every version)", r.args[0])
}
