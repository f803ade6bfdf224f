// A Watch stream shared by many watchers: queued requests (creates, progress requests) are
// written one at a time, every response goes to a sink on the stream's polling thread.
#ifndef KVD_BENCH_KVBENCH_WATCH_STREAM_H_
#define KVD_BENCH_KVBENCH_WATCH_STREAM_H_

#include <deque>
#include <memory>
#include <optional>

#include "bench/kvbench/engine.h"

namespace kvbench {

class WatchSink {
 public:
  // A response arrived on stream number `stream`, on its polling thread `thread`.
  virtual void OnWatchResponse(int stream, int thread, const etcdserverpb::WatchResponse& resp) = 0;

 protected:
  ~WatchSink() = default;
};

class WatchStream {
 public:
  // Stream number `index` runs on polling thread index % threads over conn index % conns;
  // a failure other than the final cancellation counts as an error in `error_row`.
  WatchStream(Engine* engine, int index, WatchSink* sink, int error_row);

  // Opens the stream (counts as active until it finishes). Call once.
  void Open();
  // Queues a request; it is written after the ones before it. Only on the stream's own
  // polling thread once the polling threads run (or before Open).
  void Send(etcdserverpb::WatchRequest req);
  // Ends the stream (any thread).
  void Cancel() { ctx_.TryCancel(); }
  int thread() const { return thread_; }

 private:
  void OnStart(bool ok);
  void OnRead(bool ok);
  void OnWrite(bool ok);
  void OnFinish(bool ok);
  void WriteNext();

  Engine* engine_;
  int index_;
  int thread_;
  Conn* conn_;
  WatchSink* sink_;
  int error_row_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      rw_;
  etcdserverpb::WatchResponse resp_;
  std::deque<etcdserverpb::WatchRequest> pending_;
  bool started_ = false;
  bool writing_ = false;
  bool broken_ = false;
  grpc::Status status_;
  MemberTag<WatchStream> start_tag_{this, &WatchStream::OnStart};
  MemberTag<WatchStream> read_tag_{this, &WatchStream::OnRead};
  MemberTag<WatchStream> write_tag_{this, &WatchStream::OnWrite};
  MemberTag<WatchStream> finish_tag_{this, &WatchStream::OnFinish};
};

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_WATCH_STREAM_H_
