// Peer transport: raft messages and snapshots between members, over gRPC streams on the
// peer URLs (api/kvdpb/peer.proto).
//
// Sending never blocks the raft thread: Send() queues, per peer, and starts a non-blocking
// write of what is queued on the peer's long-lived stream when none is in flight; streams
// reconnect with back-off when the peer is down. Delivery is best effort, as raft
// expects: a full queue drops messages, and the raft thread is told through the report
// callbacks (ReportUnreachable). A MSG_SNAP message
// is not sent on the message stream: the transport asks the SnapshotSource for the state
// files, streams them in chunks on a Snapshot call, and reports the outcome.
//
// Receiving: the Peer service hands each message to RaftReceiver::Receive, and a fully
// received, checksum-verified snapshot to RaftReceiver::ReceiveSnapshot. Streams from
// another cluster (cluster_id mismatch) or to another member are refused.
//
// Life cycle: register service() on the member's peer server, built with
// SetMaxReceiveMessageSize(kMaxPeerMessageBytes) (a batch or snapshot chunk is at most a
// little over max(largest raft message, snapshot_chunk_bytes)). To stop: Stop() (it
// cancels the inbound streams, so the server's Shutdown does not wait for them), then the
// server's Shutdown(), then destroy the transport (gRPC's rule: a registered service
// outlives its server).
#ifndef KVD_SERVER_TRANSPORT_TRANSPORT_H_
#define KVD_SERVER_TRANSPORT_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/raftpb/raft.pb.h"
#include "grpcpp/impl/codegen/service_type.h"

namespace kvd::server {

// Where received traffic goes. Called on transport threads; must not block for long.
class RaftReceiver {
 public:
  virtual ~RaftReceiver() = default;
  virtual void Receive(raftpb::Message msg) = 0;
  // msg is the MSG_SNAP; dir holds the received state files and now belongs to the
  // receiver (it installs them, then removes dir).
  virtual void ReceiveSnapshot(raftpb::Message msg, std::string dir) = 0;
};

// Makes the files of a snapshot of the local state, for sending.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // Writes a consistent copy of the replicated state into dir (which exists and is
  // empty). The copy is at some applied index >= the one msg.snapshot().metadata() names.
  virtual absl::Status WriteSnapshotFiles(const raftpb::Message& msg, const std::string& dir) = 0;
};

// What the peer server must accept (ServerBuilder::SetMaxReceiveMessageSize).
inline constexpr int kMaxPeerMessageBytes = 64 << 20;

struct TransportOptions {
  uint64_t local_id = 0;
  uint64_t cluster_id = 0;
  // Where snapshots are staged while being made or received.
  std::string scratch_dir;
  // Messages queued per peer before new ones are dropped.
  size_t max_queued_messages = 4096;
  // Bytes per snapshot chunk.
  size_t snapshot_chunk_bytes = 1 << 20;
  // A message batch holds at most this many bytes (one larger message travels alone).
  size_t max_batch_bytes = 1 << 20;
  // A snapshot transfer (making the files excluded) that takes longer is abandoned, on
  // both sides.
  int64_t snapshot_timeout_ms = 10 * 60 * 1000;
  // A stream write blocked longer than this (peer not reading, network gone) breaks the
  // stream; the writer reconnects.
  int64_t write_timeout_ms = 5000;
  // Reported when a peer's messages were dropped or it cannot be reached (raft thread
  // must be told: RawNode::ReportUnreachable). Called from transport threads.
  std::function<void(uint64_t peer_id)> on_unreachable;
  // Reported when a snapshot to peer_id finished (RawNode::ReportSnapshot).
  std::function<void(uint64_t peer_id, bool ok)> on_snapshot_sent;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // The Peer gRPC service to register on the member's peer server.
  virtual grpc::Service* service() = 0;

  // Peers by member id, with their advertised peer URLs ("http://host:port"; the first
  // that works is used). AddPeer of a known id is UpdatePeer. UpdatePeer with new URLs
  // moves the stream at once. RemovePeer drops what is queued for the peer and stops its
  // streams without waiting for them; messages to it are then reported unreachable.
  // None of these block on the network.
  virtual void AddPeer(uint64_t id, const std::vector<std::string>& peer_urls) = 0;
  virtual void UpdatePeer(uint64_t id, const std::vector<std::string>& peer_urls) = 0;
  virtual void RemovePeer(uint64_t id) = 0;

  // Queues msgs for their recipients (msg.to()); never blocks.
  virtual void Send(std::vector<raftpb::Message> msgs) = 0;

  // Whether a stream to/from the peer is up now (for "started" members and health): an
  // outbound stream that has written successfully and not failed since, or an inbound
  // stream whose header was accepted. A dead peer turns inactive within about a second.
  virtual bool IsActive(uint64_t id) const = 0;

  // Stops every stream and thread; pending messages are dropped. After it returns, no
  // callback (options, RaftReceiver, SnapshotSource) is running or will run.
  virtual void Stop() = 0;
};

// The gRPC implementation.
std::unique_ptr<Transport> NewGrpcTransport(TransportOptions options, RaftReceiver* receiver,
                                            SnapshotSource* source);

}  // namespace kvd::server

#endif  // KVD_SERVER_TRANSPORT_TRANSPORT_H_
