// The gRPC peer transport (transport.h): NewGrpcTransport.
//
// Sending, per peer: one long-lived Peer.Stream call on gRPC's callback API (a
// ClientWriteReactor), so no thread of ours sits between raft and the socket. Send()
// appends to the peer's bounded queue and, if no write is in flight, moves everything
// queued (up to max_batch_bytes) into one RaftBatch and starts its write right there, on
// the raft thread: StartWrite does not block (gRPC writes to the socket inline when it
// can, else buffers). When a write completes (OnWriteDone, on a gRPC thread), whatever was
// queued meanwhile goes out as the next batch. At most one write is in flight, so the
// queue is the only buffer and its bound is the back-pressure: a full queue drops new
// messages and reports the peer unreachable. When the stream breaks, what it was sending
// and what is queued is dropped (stale for raft by then), the peer is reported, and the
// watchdog starts a new stream after an exponential back-off (50 ms doubling to 1 s; reset
// by a successful write), trying the peer's next URL if the last one never worked. gRPC's
// own reconnect back-off is capped to the same 1 s. A stream idle for a second gets an
// empty batch from the watchdog, so a dead peer is noticed (and IsActive turns false)
// without traffic. A write in flight longer than write_timeout_ms (peer not reading,
// network gone) cancels the stream. A hold keeps each call (and its reactor) alive until
// the stream is broken and its last write is done; Stop() waits for every call's OnDone.
//
// A MSG_SNAP goes to a per-peer snapshot thread (at most one snapshot in flight per peer;
// another MSG_SNAP for that peer meanwhile is dropped, since raft waits for the report of
// the first): it asks the SnapshotSource for the files in a fresh directory under
// scratch_dir, streams them on Peer.Snapshot with a deadline, removes the directory and
// calls on_snapshot_sent.
//
// One watchdog thread, every 20 ms: calls on_unreachable for peers flagged by a drop or a
// broken stream (at most once per 100 ms per peer), cancels stream writes blocked longer
// than write_timeout_ms, (re)connects streams whose back-off has passed, probes idle
// streams, cancels inbound snapshots older than snapshot_timeout_ms, and joins the
// snapshot threads of removed peers once they have exited.
// on_unreachable is only ever called from that thread, so Send() never calls back into the
// raft thread's caller.
//
// Receiving runs on gRPC callback threads (ServerReadReactor): Stream checks the header
// and hands each message to RaftReceiver::Receive; Snapshot writes the files into a fresh
// directory under scratch_dir, checking offsets, sizes and CRC32Cs, fsyncs each file and
// the directory, and only on the final chunk calls RaftReceiver::ReceiveSnapshot. At most
// one inbound snapshot per sending member at a time. Stop() cancels the inbound calls and
// waits for receiver calls in progress (a shared lock around each), so none runs after it.
#ifndef KVD_SERVER_TRANSPORT_GRPC_TRANSPORT_H_
#define KVD_SERVER_TRANSPORT_GRPC_TRANSPORT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "api/kvdpb/peer.pb.h"
#include "server/transport/transport.h"

namespace kvd::server {

// "http://host:port" (optionally with a trailing "/") → the gRPC target "host:port".
// InvalidArgument for anything else (https: TLS is not supported yet).
absl::StatusOr<std::string> PeerUrlToTarget(const std::string& url);

// For tests only: ways to break the transport on purpose.
struct GrpcTransportTestHooks {
  // Called with each snapshot chunk just before it is sent; may change it.
  std::function<void(peerpb::SnapshotChunk&)> on_send_snapshot_chunk;
};

std::unique_ptr<Transport> NewGrpcTransportForTest(TransportOptions options, RaftReceiver* receiver,
                                                   SnapshotSource* source,
                                                   GrpcTransportTestHooks hooks);

}  // namespace kvd::server

#endif  // KVD_SERVER_TRANSPORT_GRPC_TRANSPORT_H_
