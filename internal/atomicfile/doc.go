// Package atomicfile provides writing a small file so that readers, and a
// crash, only ever see its old content or its whole new content.
package atomicfile
