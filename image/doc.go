// Package image provides facilities for assembling the image a build
// produces: a base image (or scratch), one layer per step, a history
// entry naming each step, and the config the manifest asked for, all as
// a standard OCI image (go-containerregistry's v1.Image).
package image
