// Package module provides facilities for kiln's build modules as OCI
// artifacts: publishing a module directory to a registry (Push), fetching
// one into the local module cache under kiln's root (Cache.Pull), listing
// that cache, and resolving the oci:// sources of use: steps for package
// manifest (Resolver).
//
// A published module is an OCI image manifest whose artifactType is
// ArtifactType, whose config (ConfigMediaType) is the module's name,
// description and parameters as JSON, and whose one layer
// (LayerMediaType) is a gzipped tar of the module directory: its
// module.yml and every file it copies, templates or includes. A pulled
// module is extracted once, by the digest of its manifest, to
// ROOT/modules/sha256/HEX, where its copy and template steps read their
// sources; their cache keys hold the files' contents, as for the build
// context, so a module's steps hit the cache wherever it was extracted.
package module
