package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestBlobsReadByObjectStore checks that blobs are objects nats.go's
// ObjectStore reads back whole (its Get verifies size and digest), that
// each is written once however often it is put, and that empty and
// multi-chunk data work.
func TestBlobsReadByObjectStore(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16+7) // 3 chunks, the last one short
	datas := [][]byte{big, {}, []byte("small"), big}
	var puts []blobPut
	for _, d := range datas {
		sum := sha256.Sum256(d)
		puts = append(puts, blobPut{key: hex.EncodeToString(sum[:]), data: d})
	}
	refs, err := c.putBlobs(ctx, puts)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := c.JetStream().ObjectStore(ctx, BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range datas {
		if refs[i].Key != puts[i].key || refs[i].Size != int64(len(d)) || refs[i].Bucket != BlobBucket {
			t.Errorf("ref %d = %+v, want key %s size %d", i, refs[i], puts[i].key, len(d))
		}
		got, err := obs.GetBytes(ctx, refs[i].Key)
		if err != nil || !bytes.Equal(got, d) {
			t.Errorf("object %d: read %d bytes, want %d: %v", i, len(got), len(d), err)
		}
	}
	info, err := obs.GetInfo(ctx, puts[0].key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Chunks != 3 || info.Size != uint64(len(big)) || info.Opts == nil || info.Opts.ChunkSize != chunkSize {
		t.Errorf("info = %+v, want 3 chunks of %d, size %d", info, chunkSize, len(big))
	}

	// Putting the same content again writes nothing.
	stream, err := c.JetStream().Stream(ctx, "OBJ_"+BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := stream.Info(ctx)
	if _, err := c.PutBlob(ctx, big); err != nil {
		t.Fatal(err)
	}
	after, _ := stream.Info(ctx)
	if after.State.LastSeq != before.State.LastSeq {
		t.Errorf("putting a stored blob again wrote %d messages", after.State.LastSeq-before.State.LastSeq)
	}
	// 3 chunks of big, 1 of "small", none of the empty one, 3 infos.
	if before.State.Msgs != 7 {
		t.Errorf("object stream holds %d messages, want 7", before.State.Msgs)
	}

	// A deleted object is written again.
	if err := obs.Delete(ctx, puts[2].key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBlob(ctx, []byte("small")); err != nil {
		t.Fatal(err)
	}
	if got, err := obs.GetBytes(ctx, puts[2].key); err != nil || string(got) != "small" {
		t.Errorf("after delete and put: %q, %v", got, err)
	}
	if _, err := obs.GetInfo(ctx, "missing"); err != jetstream.ErrObjectNotFound {
		t.Errorf("GetInfo(missing) = %v", err)
	}
}

// TestBlobWrittenOnceWhenPutConcurrently: messages prepared at once that
// carry the same attachment store it once, with no stray chunks.
func TestBlobWrittenOnceWhenPutConcurrently(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("concurrent attachment "), 300<<10/22) // 3 chunks
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := c.PutBlob(ctx, data); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stream, err := c.JetStream().Stream(ctx, "OBJ_"+BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 4 { // 3 chunks and the info
		t.Errorf("object stream holds %d messages after 16 concurrent puts of one blob, want 4", info.State.Msgs)
	}
}

// TestBlobChunksDroppedWhenWriteFails: when the object store refuses a
// chunk (here: full), the blob's info is not written and its chunks are
// dropped, so nothing half-written stays behind.
func TestBlobChunksDroppedWhenWriteFails(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	stream, err := c.JetStream().Stream(ctx, "OBJ_"+BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxBytes, cfg.Discard = 200<<10, jetstream.DiscardNew
	if _, err := c.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 300<<10) // 3 chunks: the store takes one
	if _, err := c.PutBlob(ctx, data); err == nil {
		t.Fatal("PutBlob into a full object store succeeded")
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("object stream holds %d messages after a failed put, want 0", info.State.Msgs)
	}
}
