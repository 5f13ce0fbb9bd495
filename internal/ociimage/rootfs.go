package ociimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"time"
)

// The image's unprivileged user, as distroless names it; deploy/kubernetes
// runs the pod as this uid and gid.
const (
	NonrootUID  = 65532
	NonrootName = "nonroot"
	NonrootHome = "/home/nonroot"
)

// Paths inside the image.
const (
	BinaryPath  = "/usr/local/bin/waq"
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// passwd and group give the nonroot user a name and a home, so tools that
// look the uid up (and Go's os/user) find it.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nonroot:x:65532:\n"
	// nsswitch.conf makes Go's resolver read /etc/hosts before DNS, as glibc
	// systems do.
	nsswitch = "hosts: files dns\n"
)

// entry is one file or directory of a layer.
type entry struct {
	name string // without the leading "/"
	mode int64
	uid  int
	dir  bool
	data []byte
}

// baseEntries is the filesystem every waq image has besides the binary:
// the user database, the CA bundle, a home and a /tmp.
func baseEntries(caCerts []byte) []entry {
	return []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitch)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caCerts},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: NonrootUID, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
}

// binaryEntries puts the waq binary on the PATH.
func binaryEntries(bin []byte) []entry {
	return []entry{
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: "usr/local/bin/waq", mode: 0o755, data: bin},
	}
}

// layerTar writes entries as an uncompressed layer tar. Every header has the
// same time and no user or group names, so the same inputs give the same
// bytes (and the same digest) on every machine.
func layerTar(entries []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("layer: %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// readStatic reads an ELF executable for goarch and refuses one that needs a
// dynamic loader or shared libraries: the image has no libc, so such a
// binary would fail with "no such file or directory" at start.
func readStatic(path, goarch string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("binary %s: not a Linux executable: %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("binary %s: ELF type %s, want an executable", path, f.Type)
	}
	if want, ok := elfMachines[goarch]; !ok {
		return nil, fmt.Errorf("binary %s: architecture %q not supported (want one of amd64, arm64)", path, goarch)
	} else if f.Machine != want {
		return nil, fmt.Errorf("binary %s: built for %s, the image is for %s", path, f.Machine, goarch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return nil, fmt.Errorf("binary %s: dynamically linked (loader %s); build it with CGO_ENABLED=0", path, bytes.TrimRight(interp, "\x00"))
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return nil, fmt.Errorf("binary %s: needs shared libraries %v; build it with CGO_ENABLED=0", path, libs)
	}
	return data, nil
}

var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}
