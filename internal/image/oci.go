package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Media types and annotations of the OCI image spec and of containerd that
// the writer emits.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"

	// annotationImageName is the full reference containerd's importer gives
	// the image (containerd's images.AnnotationImageName).
	annotationImageName = "io.containerd.image.name"
	// annotationRefName is the OCI tag of a manifest in an image layout.
	annotationRefName = "org.opencontainers.image.ref.name"
)

// layerTime is the modification time of every entry in a written layer, so
// that the same inputs give byte-identical tarballs (and digests).
var layerTime = time.Unix(0, 0).UTC()

// ImageConfig is the part of an OCI image configuration a container runtime
// acts on (the "config" object of the image config JSON).
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	ExposedPorts []string          // "8080/tcp"
	Labels       map[string]string // image labels
}

// File is one entry of an image's single layer. Exactly one kind applies:
// a symlink when Link is set, a directory when Mode has fs.ModeDir, else a
// regular file holding Data. Path is absolute or relative to the image root;
// parent directories that are not listed are created with mode 0755.
type File struct {
	Path string
	Mode fs.FileMode // permission bits plus fs.ModeDir, fs.ModeSticky, fs.ModeSetuid ...
	Data []byte
	Link string // symlink target
}

// Image is one image of an OCI layout: its content and every reference
// (full names such as "docker.io/library/busybox:1.36") it is known by.
type Image struct {
	Refs   []string
	Config ImageConfig
	Files  []File
}

// WriteOCI writes an OCI image-layout tarball that holds one linux/amd64
// image named ref, made of one uncompressed layer with files.
func WriteOCI(w io.Writer, ref string, cfg ImageConfig, files []File) error {
	return WriteLayout(w, Image{Refs: []string{ref}, Config: cfg, Files: files})
}

// WriteLayout writes an OCI image-layout tarball (oci-layout, index.json,
// blobs/sha256/...) holding images. Each reference becomes one entry of
// index.json, annotated with containerd's io.containerd.image.name (the full
// reference, which `ctr images import` and containerd's Import use as the
// image name) and the OCI org.opencontainers.image.ref.name (the tag).
// The output is deterministic: the same images give the same bytes.
func WriteLayout(w io.Writer, images ...Image) error {
	out := tar.NewWriter(w)
	blobs := map[string]bool{}
	writeBlob := func(data []byte) (descriptor, error) {
		d := descriptor{Digest: digestOf(data), Size: int64(len(data))}
		if blobs[d.Digest] {
			return d, nil
		}
		blobs[d.Digest] = true
		name := "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
		return d, writeTarFile(out, name, 0o644, data)
	}
	if err := writeTarDir(out, "blobs"); err != nil {
		return err
	}
	if err := writeTarDir(out, "blobs/sha256"); err != nil {
		return err
	}
	idx := index{SchemaVersion: 2, MediaType: mediaTypeIndex}
	for _, img := range images {
		if len(img.Refs) == 0 {
			return fmt.Errorf("image without a reference")
		}
		layer, err := buildLayer(img.Files)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Refs[0], err)
		}
		layerDesc, err := writeBlob(layer)
		if err != nil {
			return err
		}
		layerDesc.MediaType = mediaTypeLayer
		cfgJSON, err := json.Marshal(newConfigFile(img.Config, layerDesc.Digest))
		if err != nil {
			return fmt.Errorf("image %s: config: %w", img.Refs[0], err)
		}
		cfgDesc, err := writeBlob(cfgJSON)
		if err != nil {
			return err
		}
		cfgDesc.MediaType = mediaTypeConfig
		man, err := json.Marshal(manifest{SchemaVersion: 2, MediaType: mediaTypeManifest, Config: cfgDesc, Layers: []descriptor{layerDesc}})
		if err != nil {
			return fmt.Errorf("image %s: manifest: %w", img.Refs[0], err)
		}
		manDesc, err := writeBlob(man)
		if err != nil {
			return err
		}
		manDesc.MediaType = mediaTypeManifest
		manDesc.Platform = &platform{Architecture: "amd64", OS: "linux"}
		for _, ref := range img.Refs {
			tag, err := tagOf(ref)
			if err != nil {
				return err
			}
			d := manDesc
			d.Annotations = map[string]string{annotationImageName: ref, annotationRefName: tag}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	if err := writeTarFile(out, "oci-layout", 0o644, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	if err := writeTarFile(out, "index.json", 0o644, idxJSON); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("finish OCI layout: %w", err)
	}
	return nil
}

// tagOf returns the tag of a full reference "name:tag"; a reference must
// carry an explicit tag (a digest-only or untagged name is refused, so that
// nothing is silently imported as :latest).
func tagOf(ref string) (string, error) {
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash || colon == len(ref)-1 || strings.Contains(ref, "@") {
		return "", fmt.Errorf("image reference %q: want name:tag", ref)
	}
	return ref[colon+1:], nil
}

// buildLayer returns an uncompressed layer tar of files, adding missing
// parent directories before their children.
func buildLayer(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	made := map[string]bool{".": true, "/": true, "": true}
	var ensureDir func(dir string) error
	ensureDir = func(dir string) error {
		if made[dir] {
			return nil
		}
		if err := ensureDir(path.Dir(dir)); err != nil {
			return err
		}
		made[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: layerTime, Format: tar.FormatPAX})
	}
	for _, f := range files {
		name := path.Clean(strings.TrimPrefix(f.Path, "/"))
		if name == "." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("file path %q: not inside the image", f.Path)
		}
		if err := ensureDir(path.Dir(name)); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		hdr := &tar.Header{Name: name, Mode: tarMode(f.Mode), ModTime: layerTime, Format: tar.FormatPAX}
		switch {
		case f.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Link, 0o777
		case f.Mode.IsDir():
			if made[name] {
				continue
			}
			made[name] = true
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish layer: %w", err)
	}
	return buf.Bytes(), nil
}

// tarMode converts Go file mode bits into the Unix mode of a tar header.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func writeTarDir(tw *tar.Writer, name string) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: layerTime}); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func writeTarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: layerTime}); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// The JSON documents of the OCI image spec, reduced to the fields written.

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type configFile struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runtimeConfig `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
}

type runtimeConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

func newConfigFile(c ImageConfig, layerDigest string) configFile {
	rc := runtimeConfig{User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, Labels: c.Labels}
	if len(c.ExposedPorts) > 0 {
		rc.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			rc.ExposedPorts[p] = struct{}{}
		}
	}
	// The layer is uncompressed, so its diff ID is its digest.
	return configFile{Architecture: "amd64", OS: "linux", Config: rc, RootFS: rootFS{Type: "layers", DiffIDs: []string{layerDigest}}}
}
