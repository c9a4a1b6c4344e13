// Package remote provides kiln's shared build cache: cache records and
// their layers kept as an OCI artifact in a registry (or in an OCI image
// layout directory), so that builds on other machines, or on an empty root,
// find their steps there instead of running them. Its importers name it
// remotecache, beside package cache and go-containerregistry's remote.
//
// # The artifact
//
// A cache artifact is an OCI image manifest (application/vnd.oci.image.manifest.v1+json)
// with artifactType [ArtifactType]. Its config blob, of media type
// [ConfigMediaType], is JSON:
//
//	{
//	  "version": 1,
//	  "records": [ {"key": "<64 hex>", "layer": {descriptor}, "diffID": "sha256:…",
//	                "created": "<RFC 3339>", "step": "run: make"}, … ],
//	  "mounts":  [ {"id": "go-build", "layer": {descriptor}, "diffID": "sha256:…"}, … ],
//	  "merged":  [ "<tag>-kc-<12 hex>", … ]
//	}
//
// A record is exactly a local [cache.Record]: a step's cache key and the
// layer it produced. kiln's records hold no config delta: a step that only
// changes the config (env, workdir, user, labels) has no record, and a
// build recomputes it from the manifest. A mount is the content of a
// RUN --mount=type=cache directory, as a layer (written with
// --cache-to …,mounts=true). The manifest's layers are every blob that the
// records and mounts name, so that the registry keeps them.
//
// # Writing without losing records
//
// A registry tag has no compare-and-swap, so two writers that read, merge
// and write one tag at once can each overwrite the other's records. A
// writer to REF (repo:tag) therefore writes two artifacts:
//
//  1. a fragment, tagged "<tag>-kc-<first 12 hex digits of its config's
//     digest>", holding only this build's records and mounts: a tag that
//     only this content ever gets, so no other writer overwrites it;
//  2. the main tag, holding the merge of what it read there, of every
//     fragment that the main tag does not yet list in "merged", and of its
//     own records, with "merged" listing all those fragments.
//
// A reader lists the repository's tags, reads the main tag, and then every
// fragment that the main tag's "merged" does not list. When a concurrent
// writer overwrote the main tag with a merge that lacks another writer's
// records, that writer's fragment is not listed in "merged", and the
// reader (and the next writer) merges it again: a record, once written, is
// never lost. Fragments are never deleted by kiln (a registry's own
// retention policy may delete old ones, whose records then live on in the
// main tag once a writer merged them).
//
// An OCI layout directory (kiln cache export DIR) needs no fragments: a
// writer takes the layout's lock (see package internal/ocilayout) and
// merges its records into the main tag there, so the layout holds one
// artifact, named by the org.opencontainers.image.ref.name annotation of
// its index.json (skopeo inspect --raw oci:DIR reads it); the fragments
// an older kiln left there are merged and removed.
//
// # Reading
//
// A [Source] serves a build: on the first key that the local cache lacks,
// it reads the artifacts of its targets once; then, for each key found
// there, it downloads the layer's blob into the local store (verified by
// digest) and puts the record in the local cache, where the build finds
// it as a local hit. The layer is unpacked only when a step or test has
// to run on top of it, and unpacking checks the record's diffID (as for
// a pulled image, whose config gives the diffIDs, nothing checks them
// sooner). Blobs are fetched
// only for keys that a build looks up and only then, so several steps hit
// in parallel as the build reaches them. Bad remote data (an artifact or a
// record that does not parse, a missing or corrupt blob) is a warning and
// a miss, never a failed build.
package remote
