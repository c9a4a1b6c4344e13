// Package ocilayout writes images into OCI image layout directories
// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
// the way other tools (skopeo, umoci, podman) expect to find them.
//
// A [Layout] is a directory held under an exclusive flock(2) of the
// directory itself, so that writers in several processes never lose each
// other's index.json entries; readers need no lock, because every file
// appears whole: blobs, index.json and oci-layout are written to a temp
// file beside their place, synced and renamed. Every file is mode 0644
// (go-containerregistry's layout package writes index.json and oci-layout
// 0755 and streamed blobs 0600). An image's entry in index.json is its
// media type, digest and size, with the org.opencontainers.image.ref.name
// annotation; it has an artifactType only when the image's manifest has
// one (go-containerregistry puts the config's media type there for a plain
// image, which the image spec reserves for artifacts).
package ocilayout
