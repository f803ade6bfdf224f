// The gRPC peer transport (transport.h): NewGrpcTransport.
//
// Threads, per peer: one writer thread owns the peer's message stream (a sync
// grpc::ClientWriter on Peer.Stream). It drains the peer's bounded queue, putting every
// message waiting (up to max_batch_bytes) into one RaftBatch per Write; while a Write is
// blocked by gRPC flow control new messages pile up in the queue and go out together in the
// next batch, so the queue is the only buffer and its bound is the back-pressure: a full
// queue drops new messages and reports the peer unreachable. When the stream breaks, the
// writer drops what it was sending and what is queued (stale for raft by then), reports,
// and reconnects after an exponential back-off (50 ms doubling to 1 s; reset by a
// successful write), trying the peer's next URL if the last one never worked. gRPC's own
// reconnect back-off is capped to the same 1 s. An idle stream writes an empty
// batch every second, so a dead peer is noticed (and IsActive turns false) without traffic.
// A sync writer on its own thread was chosen over a ClientWriteReactor: the loop above is a
// dozen lines of straight code, and a blocking Write gives back-pressure for free; the cost
// is one thread per peer, which for a handful of members is nothing.
//
// A MSG_SNAP goes to a per-peer snapshot thread (at most one snapshot in flight per peer;
// another MSG_SNAP for that peer meanwhile is dropped, since raft waits for the report of
// the first): it asks the SnapshotSource for the files in a fresh directory under
// scratch_dir, streams them on Peer.Snapshot with a deadline, removes the directory and
// calls on_snapshot_sent.
//
// One watchdog thread, every 20 ms: calls on_unreachable for peers flagged by a drop or a
// broken stream (at most once per 100 ms per peer), cancels stream writes blocked longer
// than write_timeout_ms, cancels inbound snapshots older than snapshot_timeout_ms, and
// joins the threads of removed peers once they have exited.
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

std::unique_ptr<Transport> NewGrpcTransportForTest(TransportOptions options,
                                                   RaftReceiver* receiver,
                                                   SnapshotSource* source,
                                                   GrpcTransportTestHooks hooks);

}  // namespace kvd::server

#endif  // KVD_SERVER_TRANSPORT_GRPC_TRANSPORT_H_
