// Package ociimage builds waq's container image from a static waq binary
// and the machine's CA bundle, with neither a Docker daemon nor a base image
// to pull: two layers (the base files, then the binary) on an empty image,
// written as one tarball that both `docker load` and OCI tools read (see
// WriteArchive).
package ociimage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultCACerts is where Debian's ca-certificates package puts the bundle.
const DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"

// Options say what goes into the image; the zero value of each optional
// field means its default.
type Options struct {
	// Binary is the path of a statically linked Linux waq binary. Required.
	Binary string
	// CACerts is the PEM bundle to ship. Defaults to DefaultCACerts.
	CACerts string
	// Arch is the GOARCH the binary was built for. Defaults to the
	// running one.
	Arch string
	// Created is the time recorded in the image and on every file.
	// Defaults to $SOURCE_DATE_EPOCH, or the Unix epoch when unset, so that
	// the same inputs make the same image digest.
	Created time.Time
	// Version goes into the org.opencontainers.image.version label.
	Version string
}

// Entrypoint, Cmd and User of the image: deploy/kubernetes gives the
// command ("worker") as args and runs as the nonroot uid.
var (
	Entrypoint = []string{BinaryPath}
	Cmd        = []string{"worker"}
	User       = fmt.Sprintf("%d:%d", NonrootUID, NonrootUID)
)

// Build makes the image. It refuses a binary that is not static, since the
// image has no C library to load one against.
func Build(o Options) (v1.Image, error) {
	if o.Binary == "" {
		return nil, errors.New("binary: missing")
	}
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	created := o.Created
	if created.IsZero() {
		var err error
		if created, err = sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
			return nil, err
		}
	}
	created = created.UTC()
	bin, err := readStatic(o.Binary, o.Arch)
	if err != nil {
		return nil, err
	}
	ca, err := readCACerts(o.CACerts)
	if err != nil {
		return nil, err
	}

	base, err := layer(baseEntries(ca), created)
	if err != nil {
		return nil, err
	}
	app, err := layer(binaryEntries(bin), created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "waq: /etc (passwd, group, CA certificates), /home/nonroot, /tmp", Comment: "ociimage"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "waq: " + BinaryPath, Comment: "ociimage"}},
	)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS = "linux"
	cf.Architecture = o.Arch
	labels := map[string]string{
		"org.opencontainers.image.title":       "waq",
		"org.opencontainers.image.description": "waq sends WhatsApp messages reliably through NATS JetStream and the Graph API",
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	if o.Version != "" {
		labels["org.opencontainers.image.version"] = o.Version
	}
	cf.Config = v1.Config{
		Entrypoint: Entrypoint,
		Cmd:        Cmd,
		User:       User,
		WorkingDir: NonrootHome,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + NonrootHome,
			"SSL_CERT_FILE=" + CACertsPath,
		},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Labels:       labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// layer is a gzip-compressed layer of entries.
func layer(entries []entry, mtime time.Time) (v1.Layer, error) {
	raw, err := layerTar(entries, mtime)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}

// readCACerts reads a PEM bundle and refuses a file without a certificate.
func readCACerts(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w (install Debian's ca-certificates package)", err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate in it", path)
	}
	return data, nil
}

// sourceDateEpoch parses $SOURCE_DATE_EPOCH (reproducible-builds.org).
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0), nil
	}
	var sec int64
	if _, err := fmt.Sscanf(v, "%d", &sec); err != nil || sec < 0 || fmt.Sprint(sec) != v {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %q is not a count of seconds since 1970", v)
	}
	return time.Unix(sec, 0), nil
}

// ParseTag checks a repository:tag reference such as "waq:1.0.0"; the tag
// must be given, not defaulted to "latest".
func ParseTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("tag %q: %w", ref, err)
	}
	if strings.Contains(ref, "@") || !strings.HasSuffix(ref, ":"+t.TagStr()) {
		return name.Tag{}, fmt.Errorf("tag %q: want repository:tag, like waq:1.0.0", ref)
	}
	return t, nil
}

// fullName is the reference as containerd records it:
// "docker.io/library/waq:1.0.0" for "waq:1.0.0".
func fullName(t name.Tag) string {
	reg := t.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + t.RepositoryStr() + ":" + t.TagStr()
}
