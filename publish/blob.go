package publish

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/mailpoller/mailpoller/message"
)

// chunkSize is the size of an object's chunks, nats.go's default.
const chunkSize = 128 << 10

// stallWait is how long an async publish waits for room in the window of
// unacknowledged messages before it fails.
const stallWait = 5 * time.Second

// blobPut is one object to store: data under key, the lower-case hex of
// its sha256, with the filename and content type a consumer serves it as.
type blobPut struct {
	key         string
	data        []byte
	filename    string
	contentType string
}

// Object-store metadata keys of every blob (ObjectInfo.Metadata), so a
// consumer holding only a key can serve the file. The same two facts are
// also in the object's headers, as Content-Type and Content-Disposition.
// A blob is stored once per content: when two attachments share their
// bytes, the metadata is that of the first one stored.
const (
	MetaFilename    = "filename"
	MetaContentType = "content_type"
)

// Filenames and content types of the blobs that are not attachments.
const (
	rawFilename  = "message.eml"
	rawType      = "message/rfc822"
	textFilename = "body.txt"
	textType     = "text/plain; charset=utf-8"
	htmlFilename = "body.html"
	htmlType     = "text/html; charset=utf-8"
	octetType    = "application/octet-stream"
)

// rawPut is the object of a raw message.
func rawPut(raw []byte) blobPut {
	sum := sha256.Sum256(raw)
	return blobPut{key: hex.EncodeToString(sum[:]), data: raw, filename: rawFilename, contentType: rawType}
}

// attachmentPut is the object of an attachment's data; its SHA256 must be
// that of data.
func attachmentPut(a *message.Attachment, data []byte) blobPut {
	ct := a.ContentType
	if ct == "" {
		ct = octetType
	}
	return blobPut{key: a.SHA256, data: data, filename: a.Filename, contentType: ct}
}

// PutBlob stores data in the object store under its sha256 (once: an
// existing object is reused) and returns the reference. Its metadata
// says application/octet-stream and no filename; PutFile names both.
func (c *Conn) PutBlob(ctx context.Context, data []byte) (*message.Blob, error) {
	return c.PutFile(ctx, data, "", octetType)
}

// PutFile is PutBlob with the filename and content type kept in the
// object's metadata (MetaFilename, MetaContentType).
func (c *Conn) PutFile(ctx context.Context, data []byte, filename, contentType string) (*message.Blob, error) {
	sum := sha256.Sum256(data)
	refs, err := c.putBlobs(ctx, []blobPut{{key: hex.EncodeToString(sum[:]), data: data, filename: filename, contentType: contentType}})
	if err != nil {
		return nil, err
	}
	return refs[0], nil
}

// objectMeta is the object-store meta of p: its name, and its filename
// and content type as metadata and as headers.
func objectMeta(p blobPut) jetstream.ObjectMeta {
	ct := p.contentType
	if ct == "" {
		ct = octetType
	}
	meta := jetstream.ObjectMeta{
		Name:     p.key,
		Opts:     &jetstream.ObjectMetaOptions{ChunkSize: chunkSize},
		Metadata: map[string]string{MetaContentType: ct},
		Headers:  nats.Header{"Content-Type": []string{ct}},
	}
	if p.filename != "" {
		meta.Metadata[MetaFilename] = p.filename
		meta.Headers.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": p.filename}))
	}
	return meta
}

// putBlobs stores several objects, each once, and returns their
// references in order. They are written in the object store's own format
// (ADR-20: chunks on $O.<bucket>.C.<nuid>, then the object's info rolled
// up on $O.<bucket>.M.<name>), so nats.go's ObjectStore and the nats CLI
// read them. nats.go's Put does the same for one object but hashes the
// data again, looks the name up twice and sets up a reply subscription per
// object; here the key is the digest, all chunks go out at once on the
// shared connection, and an info is published only after all chunks are
// stored, so a failed write never leaves an object without its data.
func (c *Conn) putBlobs(ctx context.Context, puts []blobPut) ([]*message.Blob, error) {
	refs, err := c.writeBlobs(ctx, puts)
	if err != nil {
		c.heal(ctx, err) // the object store may be gone: the caller's retry finds it again
	}
	return refs, err
}

// writeBlobs is putBlobs without the heal.
func (c *Conn) writeBlobs(ctx context.Context, puts []blobPut) ([]*message.Blob, error) {
	refs := make([]*message.Blob, len(puts))
	var keys []string
	for i, p := range puts {
		refs[i] = &message.Blob{Bucket: BlobBucket, Key: p.key, Size: int64(len(p.data))}
		keys = append(keys, p.key)
	}
	// Two messages with the same attachment, prepared at once, would both
	// find it missing and write it; one copy's chunks would stay behind.
	// So a key is written by one caller at a time, and the next one finds
	// it stored. Keys are claimed in order, so no two callers wait on
	// each other.
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for i, k := range keys {
		if err := c.claim(ctx, k); err != nil {
			c.release(keys[:i]...)
			return nil, err
		}
	}
	defer c.release(keys...)
	var infos []*jetstream.ObjectInfo
	var chunks []jetstream.PubAckFuture
	seen := map[string]bool{}
	for _, p := range puts {
		if seen[p.key] {
			continue
		}
		seen[p.key] = true
		have, err := c.blobs.GetInfo(ctx, p.key)
		if err == nil && !have.Deleted && have.Size == uint64(len(p.data)) && c.outlivesNewEvent(have.ModTime) {
			continue // stored before: content-addressed, so the same
		}
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, fmt.Errorf("look up blob %s: %w", p.key, err)
		}
		sum, err := hex.DecodeString(p.key)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("blob key %q is not a sha256", p.key)
		}
		info := &jetstream.ObjectInfo{
			ObjectMeta: objectMeta(p),
			Bucket:     BlobBucket, NUID: nuid.Next(), Size: uint64(len(p.data)), ModTime: time.Now().UTC(),
			Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(sum),
		}
		infos = append(infos, info)
		for off := 0; off < len(p.data); off += chunkSize {
			m := nats.NewMsg(chunkSubject(info.NUID))
			m.Data = p.data[off:min(off+chunkSize, len(p.data))]
			f, err := c.js.PublishMsgAsync(m, jetstream.WithStallWait(stallWait))
			if err != nil {
				c.purgeChunks(infos)
				return nil, fmt.Errorf("store blob %s: %w", p.key, err)
			}
			chunks = append(chunks, f)
			info.Chunks++
		}
	}
	if err := awaitAcks(ctx, chunks); err != nil {
		c.purgeChunks(infos)
		return nil, fmt.Errorf("store blob chunks: %w", err)
	}
	metas := make([]jetstream.PubAckFuture, 0, len(infos))
	for _, info := range infos {
		m := nats.NewMsg("$O." + BlobBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(info.Name)))
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		m.Data, _ = json.Marshal(info) // plain fields: cannot fail
		f, err := c.js.PublishMsgAsync(m, jetstream.WithStallWait(stallWait))
		if err != nil {
			return nil, fmt.Errorf("store blob %s: %w", info.Name, err)
		}
		metas = append(metas, f)
	}
	if err := awaitAcks(ctx, metas); err != nil {
		return nil, fmt.Errorf("store blob info: %w", err)
	}
	return refs, nil
}

func chunkSubject(nuid string) string { return "$O." + BlobBucket + ".C." + nuid }

// purgeChunks drops, as far as it can, the chunks written for objects
// whose info was never published: nothing refers to them.
func (c *Conn) purgeChunks(infos []*jetstream.ObjectInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, "OBJ_"+BlobBucket)
	if err != nil {
		c.log.Debug("could not drop the chunks of an unfinished blob", "err", err)
		return
	}
	for _, info := range infos {
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(info.NUID))); err != nil {
			c.log.Debug("could not drop the chunks of an unfinished blob", "key", info.Name, "err", err)
		}
	}
}

// claim waits until no other putBlobs of c is writing key, then marks it
// as being written until release.
func (c *Conn) claim(ctx context.Context, key string) error {
	for {
		c.writingMu.Lock()
		busy, ok := c.writing[key]
		if !ok {
			if c.writing == nil {
				c.writing = map[string]chan struct{}{}
			}
			c.writing[key] = make(chan struct{})
			c.writingMu.Unlock()
			return nil
		}
		c.writingMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release ends the claims on keys.
func (c *Conn) release(keys ...string) {
	c.writingMu.Lock()
	defer c.writingMu.Unlock()
	for _, k := range keys {
		close(c.writing[k])
		delete(c.writing, k)
	}
}

// awaitAcks waits for every future's PubAck and returns the first error.
func awaitAcks(ctx context.Context, futs []jetstream.PubAckFuture) error {
	// After a refusal the other publishes are still in flight, and a later
	// chunk may yet be stored (a smaller one fits where a full one did
	// not): wait for them to settle, for at most settleWait, so that the
	// purge that follows finds every chunk that lands.
	var first error
	var settle <-chan time.Time
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if first == nil {
				first, settle = err, time.After(settleWait)
			}
		case <-settle:
			return first
		case <-ctx.Done():
			if first != nil {
				return first
			}
			return ctx.Err()
		}
	}
	return first
}

// settleWait bounds the wait for publishes in flight after one failed.
const settleWait = 5 * time.Second

// GetBlob reads a blob back (for consumers, tail and tests).
func (c *Conn) GetBlob(ctx context.Context, b *message.Blob) ([]byte, error) {
	return c.blobs.GetBytes(ctx, b.Key)
}
