// Command waq-image writes waq's container image as a tarball that
// `docker load` and OCI tools read, without a Docker daemon or a base image
// (see package ociimage). `make image` builds the static binary and runs it:
//
//	waq-image --binary bin/linux-amd64/waq --tag waq:1.0.0 --out bin/waq-image.tar
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/waqhq/waq/internal/ociimage"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "waq-image:", err)
		}
		os.Exit(2)
	}
}

func run(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("waq-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "", "statically linked Linux waq binary (CGO_ENABLED=0) (required)")
	tag := fs.String("tag", "", "repository:tag to record, like waq:1.0.0 (required)")
	out := fs.String("out", "", "tarball to write (required)")
	ca := fs.String("ca-certs", ociimage.DefaultCACerts, "PEM CA bundle to ship (Debian's ca-certificates package)")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH the binary was built for")
	version := fs.String("version", "", "org.opencontainers.image.version label (default: the tag's tag)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range []struct{ name, v string }{{"binary", *binary}, {"tag", *tag}, {"out", *out}} {
		if f.v == "" {
			return fmt.Errorf("--%s is required", f.name)
		}
	}
	t, err := ociimage.ParseTag(*tag)
	if err != nil {
		return err
	}
	if *version == "" {
		*version = t.TagStr()
	}
	img, err := ociimage.Build(ociimage.Options{Binary: *binary, CACerts: *ca, Arch: *arch, Version: *version})
	if err != nil {
		return err
	}
	if err := ociimage.WriteArchiveFile(*out, img, *tag); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s %s\n", *out, *tag, digest)
	return nil
}
