package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/waqhq/waq/internal/testenv"
	"go.yaml.in/yaml/v3"
)

var (
	makeOnce sync.Once
	makeDir  string
	makeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if makeDir != "" {
		os.RemoveAll(makeDir)
	}
	os.Exit(code)
}

// madeImage runs `make image` once per test process into a temporary BIN
// and returns that directory: the tests check what the Makefile makes, not
// a second way of making it.
func madeImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a static waq binary")
	}
	makeOnce.Do(func() {
		if makeDir, makeErr = os.MkdirTemp("", "waq-image-"); makeErr != nil {
			return
		}
		cmd := exec.Command("make", "image", "BIN="+makeDir)
		cmd.Dir = testenv.ModuleRoot()
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("make image: %v\n%s", err, out)
			makeErr = err
		}
	})
	if makeErr != nil {
		t.Fatalf("make image: %v", makeErr)
	}
	return makeDir
}

// TestMakeImage unpacks bin/waq-image.tar by hand, as docker load and an
// OCI runtime would, checks both of its indexes against the blobs, and runs
// `waq --help` from the unpacked filesystem.
func TestMakeImage(t *testing.T) {
	dir := madeImage(t)
	archive := filepath.Join(dir, "waq-image.tar")
	out := t.TempDir()
	files := untar(t, archive, out)
	for _, want := range []string{"oci-layout", "index.json", "manifest.json"} {
		if !files[want] {
			t.Fatalf("archive lacks %s; has %v", want, files)
		}
	}
	if b := readFile(t, out, "oci-layout"); !bytes.Equal(b, []byte(`{"imageLayoutVersion":"1.0.0"}`)) {
		t.Errorf("oci-layout = %s", b)
	}
	// Every blob is named by the SHA-256 of its bytes.
	blobs, err := filepath.Glob(filepath.Join(out, "blobs", "sha256", "*"))
	if err != nil || len(blobs) != 4 {
		t.Fatalf("blobs = %v, %v; want manifest, config and two layers", blobs, err)
	}
	for _, b := range blobs {
		sum := sha256.Sum256(readFile(t, b))
		if hex.EncodeToString(sum[:]) != filepath.Base(b) {
			t.Errorf("blob %s has digest %x", filepath.Base(b), sum)
		}
	}

	// OCI half: index.json -> manifest -> config and layers.
	var index v1.IndexManifest
	unmarshal(t, readFile(t, out, "index.json"), &index)
	if index.SchemaVersion != 2 || index.MediaType != "application/vnd.oci.image.index.v1+json" || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %+v", index)
	}
	desc := index.Manifests[0]
	if desc.Annotations["org.opencontainers.image.ref.name"] != "1.0.0" || desc.Annotations["io.containerd.image.name"] != "docker.io/library/waq:1.0.0" {
		t.Errorf("index annotations = %v", desc.Annotations)
	}
	rawManifest := readFile(t, out, "blobs", "sha256", desc.Digest.Hex)
	if int64(len(rawManifest)) != desc.Size {
		t.Errorf("manifest is %d bytes, index says %d", len(rawManifest), desc.Size)
	}
	var manifest v1.Manifest
	unmarshal(t, rawManifest, &manifest)
	if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" || manifest.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(manifest.Layers) != 2 {
		t.Fatalf("manifest = %s", rawManifest)
	}

	// Docker half: manifest.json names the same config and layers, in order.
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	unmarshal(t, readFile(t, out, "manifest.json"), &docker)
	if len(docker) != 1 || !slices.Equal(docker[0].RepoTags, []string{"waq:1.0.0"}) {
		t.Fatalf("manifest.json = %+v", docker)
	}
	if docker[0].Config != "blobs/sha256/"+manifest.Config.Digest.Hex {
		t.Errorf("manifest.json config %s, OCI manifest %s", docker[0].Config, manifest.Config.Digest)
	}
	var cfg v1.ConfigFile
	unmarshal(t, readFile(t, out, docker[0].Config), &cfg)
	if len(docker[0].Layers) != len(manifest.Layers) || len(cfg.RootFS.DiffIDs) != len(manifest.Layers) || len(cfg.History) != len(manifest.Layers) {
		t.Fatalf("layers: manifest.json %d, OCI %d, diff_ids %d, history %d", len(docker[0].Layers), len(manifest.Layers), len(cfg.RootFS.DiffIDs), len(cfg.History))
	}

	// The config: what the container runs, as whom.
	if cfg.OS != "linux" || cfg.Architecture == "" || cfg.RootFS.Type != "layers" {
		t.Errorf("config os/arch/rootfs = %s/%s/%s", cfg.OS, cfg.Architecture, cfg.RootFS.Type)
	}
	c := cfg.Config
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/waq"}) || !slices.Equal(c.Cmd, []string{"worker"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" || c.WorkingDir != "/home/nonroot" {
		t.Errorf("user %q workdir %q", c.User, c.WorkingDir)
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("env = %q", c.Env)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports = %v", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.version"] != "1.0.0" {
		t.Errorf("labels = %v", c.Labels)
	}

	// Unpack the layers in order, checking each against the manifest's
	// digest and the config's diff_id.
	root := t.TempDir()
	headers := map[string]*tar.Header{}
	for i, l := range manifest.Layers {
		if docker[0].Layers[i] != "blobs/sha256/"+l.Digest.Hex {
			t.Errorf("layer %d: manifest.json %s, OCI %s", i, docker[0].Layers[i], l.Digest)
		}
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("layer %d media type %s", i, l.MediaType)
		}
		diffID := unpackLayer(t, filepath.Join(out, docker[0].Layers[i]), root, headers)
		if diffID != cfg.RootFS.DiffIDs[i].Hex {
			t.Errorf("layer %d: uncompressed digest %s, diff_id %s", i, diffID, cfg.RootFS.DiffIDs[i])
		}
	}

	// The user database names uid and gid 65532, as the pod runs.
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:65532:[^:]*:/home/nonroot:[^:]+$`).Match(readFile(t, root, "etc/passwd")) {
		t.Errorf("etc/passwd = %s", readFile(t, root, "etc/passwd"))
	}
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:$`).Match(readFile(t, root, "etc/group")) {
		t.Errorf("etc/group = %s", readFile(t, root, "etc/group"))
	}
	if h := headers["home/nonroot/"]; h == nil || h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("home/nonroot header = %+v", h)
	}
	if h := headers["tmp/"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("tmp header = %+v", h)
	}
	// The CA bundle is Debian's, byte for byte.
	if !bytes.Equal(readFile(t, root, "etc/ssl/certs/ca-certificates.crt"), readFile(t, DefaultCACerts)) {
		t.Error("etc/ssl/certs/ca-certificates.crt differs from " + DefaultCACerts)
	}
	// The binary is root's, executable by all, and static.
	bin := filepath.Join(root, "usr/local/bin/waq")
	if h := headers["usr/local/bin/waq"]; h == nil || h.Uid != 0 || h.Mode != 0o755 {
		t.Errorf("waq header = %+v", h)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's waq is dynamically linked")
		}
	}
	f.Close()

	// waq --help from the unpacked filesystem.
	help, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("waq --help: %v\n%s", err, help)
	}
	for _, want := range []string{"Usage: waq COMMAND", "worker", "fakegraph"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("waq --help lacks %q:\n%s", want, help)
		}
	}

	// Where the test may chroot (root), run it inside the image's own
	// filesystem as the image's user: nothing of the host's is there.
	if os.Geteuid() == 0 {
		cmd := exec.Command(c.Entrypoint[0], "--help")
		cmd.Dir = "/"
		cmd.Env = c.Env
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: NonrootUID, Gid: NonrootUID}}
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage: waq COMMAND") {
			t.Errorf("waq --help in the image's root as 65532: %v\n%s", err, out)
		}
	}

	// The readers of the two formats agree that the image is whole.
	tag, err := name.NewTag("waq:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("docker-archive reader: %v", err)
	}
	if err := validate.Image(fromTar); err != nil {
		t.Errorf("docker-archive reader: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatalf("OCI layout reader: %v", err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("OCI layout reader: %v", err)
	}
	// docker load makes its own manifest from manifest.json; what must agree
	// is the config (the image id docker shows) and the layers.
	if id, err := fromTar.ConfigName(); err != nil || id != manifest.Config.Digest {
		t.Errorf("docker-archive image id %s (%v), OCI config %s", id, err, manifest.Config.Digest)
	}
	if ls, err := fromTar.Layers(); err != nil || len(ls) != len(manifest.Layers) {
		t.Errorf("docker-archive layers %d (%v), OCI %d", len(ls), err, len(manifest.Layers))
	} else {
		for i, l := range ls {
			if d, err := l.Digest(); err != nil || d != manifest.Layers[i].Digest {
				t.Errorf("docker-archive layer %d digest %s (%v), OCI %s", i, d, err, manifest.Layers[i].Digest)
			}
		}
	}
}

// TestBuildReproducible: the same binary and bundle make the same digest.
func TestBuildReproducible(t *testing.T) {
	bin := filepath.Join(madeImage(t), "linux-"+archOf(t)+"/waq")
	var digests []v1.Hash
	for range 2 {
		img, err := Build(Options{Binary: bin, Arch: archOf(t)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds: %s and %s", digests[0], digests[1])
	}
}

// TestBuildRefuses: what would make an image that cannot start.
func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	noPEM := filepath.Join(dir, "empty.crt")
	for _, f := range []string{text, noPEM} {
		if err := os.WriteFile(f, []byte("not it\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dynamic, err := exec.LookPath("sh") // Debian's dash needs libc
	if err != nil {
		t.Fatal(err)
	}
	dynamic, _ = filepath.EvalSymlinks(dynamic)
	other := "arm64"
	if archOf(t) == "arm64" {
		other = "amd64"
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no binary", Options{}, "binary: missing"},
		{"binary missing", Options{Binary: filepath.Join(dir, "nope")}, "no such file"},
		{"not ELF", Options{Binary: text}, "not a Linux executable"},
		{"dynamic", Options{Binary: dynamic}, "CGO_ENABLED=0"},
		{"wrong arch", Options{Binary: dynamic, Arch: other}, "built for"},
		{"unknown arch", Options{Binary: dynamic, Arch: "riscv64"}, "not supported"},
	}
	if !testing.Short() {
		static := filepath.Join(madeImage(t), "linux-"+archOf(t)+"/waq")
		tests = append(tests,
			struct {
				name string
				o    Options
				want string
			}{"CA missing", Options{Binary: static, CACerts: filepath.Join(dir, "nope.crt")}, "ca-certificates package"},
			struct {
				name string
				o    Options
				want string
			}{"CA without PEM", Options{Binary: static, CACerts: noPEM}, "no PEM certificate"},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Arch == "" {
				tt.o.Arch = archOf(t)
			}
			_, err := Build(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseTag(t *testing.T) {
	for _, ok := range []string{"waq:1.0.0", "registry.example.com/team/waq:v2", "localhost:5000/waq:dev"} {
		if _, err := ParseTag(ok); err != nil {
			t.Errorf("ParseTag(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "waq", "localhost:5000/waq", "Waq:1", "waq:", "waq:1 0", "waq@sha256:" + strings.Repeat("a", 64)} {
		if _, err := ParseTag(bad); err == nil {
			t.Errorf("ParseTag(%q) accepted", bad)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	if tm, err := sourceDateEpoch("1700000000"); err != nil || tm.Unix() != 1700000000 {
		t.Errorf("1700000000 -> %v, %v", tm, err)
	}
	if tm, err := sourceDateEpoch(""); err != nil || tm.Unix() != 0 {
		t.Errorf("unset -> %v, %v", tm, err)
	}
	for _, bad := range []string{"-1", "1.5", "soon", "17e8", " 1"} {
		if _, err := sourceDateEpoch(bad); err == nil {
			t.Errorf("SOURCE_DATE_EPOCH=%q accepted", bad)
		}
	}
}

// TestKustomizationNamesTheImage: deploy/kubernetes runs the image that
// `make image` tags, so the two cannot drift apart.
func TestKustomizationNamesTheImage(t *testing.T) {
	mk := readFile(t, testenv.ModuleRoot(), "Makefile")
	m := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+):(\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile has no IMAGE ?= name:tag")
	}
	var k struct {
		Images []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal(readFile(t, testenv.ModuleRoot(), "deploy/kubernetes/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "waq" || k.Images[0].NewName != string(m[1]) || k.Images[0].NewTag != string(m[2]) {
		t.Errorf("kustomization images = %+v, want waq -> %s:%s", k.Images, m[1], m[2])
	}
}

func archOf(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func readFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// untar unpacks the outer archive (regular files and directories only) and
// returns the names it held.
func untar(t *testing.T, archive, dst string) map[string]bool {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimSuffix(h.Name, "/")] = true
		extract(t, tr, h, dst)
	}
}

// unpackLayer gunzips and unpacks one layer into root, records its headers,
// and returns the hex SHA-256 of the uncompressed tar (its diff_id).
func unpackLayer(t *testing.T, path, root string, headers map[string]*tar.Header) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("layer %s: %v", path, err)
	}
	h := sha256.New()
	tr := tar.NewReader(io.TeeReader(zr, h))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		headers[hdr.Name] = hdr
		extract(t, tr, hdr, root)
	}
	io.Copy(io.Discard, zr) // the tar's end padding belongs to the digest
	return hex.EncodeToString(h.Sum(nil))
}

func extract(t *testing.T, r io.Reader, h *tar.Header, dst string) {
	t.Helper()
	name := filepath.Clean(h.Name)
	if filepath.IsAbs(name) || strings.HasPrefix(name, "..") {
		t.Fatalf("unsafe path %q in archive", h.Name)
	}
	p := filepath.Join(dst, name)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, r); err != nil {
			t.Fatal(err)
		}
		f.Close()
	default:
		t.Fatalf("%s: unexpected tar entry type %c", h.Name, h.Typeflag)
	}
}
