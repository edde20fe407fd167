// Package docscheck binds the documentation (README.md, docs/*.md) to the
// code it describes, so that the two cannot drift apart unnoticed: links
// and their anchors, the make targets, the variable table, the commands
// and flags of both binaries. It reads Markdown the way GitHub renders it,
// as far as these checks need; it must not know the binaries' internals:
// callers hand it the names the code defines.
package docscheck
