package ociimage

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The names OCI and containerd give a tag in an index's annotations.
const (
	annotationRefName   = "org.opencontainers.image.ref.name"
	annotationImageName = "io.containerd.image.name"
)

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// WriteArchive writes img tagged ref as one tar that is at once an OCI image
// layout (oci-layout, index.json, blobs/sha256/...) and a docker-archive
// (manifest.json naming the same blobs), the form `docker save` writes since
// Docker 25: `docker load` reads either half, and OCI tools (skopeo's
// oci-archive:, crane, containerd's ctr import) read the layout.
func WriteArchive(w io.Writer, img v1.Image, ref string) error {
	tag, err := ParseTag(ref)
	if err != nil {
		return err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("archive: manifest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("archive: config: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	configName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mt,
			Size:      int64(len(manifest)),
			Digest:    digest,
			Platform:  &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
			Annotations: map[string]string{
				annotationImageName: fullName(tag),
				annotationRefName:   tag.TagStr(),
			},
		}},
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	dm := dockerManifest{Config: blobPath(configName), RepoTags: []string{ref}}

	a := archive{tw: tar.NewWriter(w), mtime: cf.Created.Time, dirs: map[string]bool{}}
	if err := a.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := a.json("index.json", index); err != nil {
		return err
	}
	if err := a.file(blobPath(digest), manifest); err != nil {
		return err
	}
	if err := a.file(blobPath(configName), config); err != nil {
		return err
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("archive: layer %d: %w", i, err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("archive: layer %d: %w", i, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("archive: layer %d: %w", i, err)
		}
		err = a.stream(blobPath(d), size, rc)
		rc.Close()
		if err != nil {
			return err
		}
		dm.Layers = append(dm.Layers, blobPath(d))
	}
	if err := a.json("manifest.json", []dockerManifest{dm}); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// WriteArchiveFile writes the archive to path, through a temporary file in
// the same directory so that a failed build leaves no half tarball.
func WriteArchiveFile(path string, img v1.Image, ref string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".waq-image-*.tar")
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := WriteArchive(f, img, ref); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return os.Rename(f.Name(), path)
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// archive writes the outer tar: its directories once each, every header
// with the image's time.
type archive struct {
	tw    *tar.Writer
	mtime time.Time
	dirs  map[string]bool
}

func (a *archive) dir(name string) error {
	if name == "." || a.dirs[name] {
		return nil
	}
	if err := a.dir(path.Dir(name)); err != nil {
		return err
	}
	a.dirs[name] = true
	return a.header(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
}

func (a *archive) header(h *tar.Header) error {
	h.ModTime = a.mtime
	h.Format = tar.FormatPAX
	if err := a.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("archive: %s: %w", h.Name, err)
	}
	return nil
}

func (a *archive) stream(name string, size int64, r io.Reader) error {
	if err := a.dir(path.Dir(name)); err != nil {
		return err
	}
	if err := a.header(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		return err
	}
	if n, err := io.Copy(a.tw, r); err != nil {
		return fmt.Errorf("archive: %s: %w", name, err)
	} else if n != size {
		return fmt.Errorf("archive: %s: wrote %d bytes, want %d", name, n, size)
	}
	return nil
}

func (a *archive) file(name string, data []byte) error {
	if err := a.dir(path.Dir(name)); err != nil {
		return err
	}
	if err := a.header(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
		return err
	}
	if _, err := a.tw.Write(data); err != nil {
		return fmt.Errorf("archive: %s: %w", name, err)
	}
	return nil
}

func (a *archive) json(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("archive: %s: %w", name, err)
	}
	return a.file(name, data)
}
