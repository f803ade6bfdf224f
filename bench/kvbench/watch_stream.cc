#include "bench/kvbench/watch_stream.h"

namespace kvbench {

WatchStream::WatchStream(Engine* engine, int index, WatchSink* sink, int error_row)
    : engine_(engine),
      index_(index),
      thread_(index % engine->threads()),
      conn_(&engine->conn(index)),
      sink_(sink),
      error_row_(error_row) {}

void WatchStream::Open() {
  engine_->AddActive();
  ctx_.set_deadline(engine_->StreamDeadline());
  rw_ = conn_->watch->PrepareAsyncWatch(&ctx_, engine_->cq(thread_));
  rw_->StartCall(&start_tag_);
}

void WatchStream::Send(etcdserverpb::WatchRequest req) {
  pending_.push_back(std::move(req));
  if (started_ && !writing_) WriteNext();
}

void WatchStream::WriteNext() {
  if (pending_.empty() || broken_) return;
  writing_ = true;
  rw_->Write(pending_.front(), &write_tag_);
}

void WatchStream::OnStart(bool ok) {
  if (!ok) {
    broken_ = true;
    rw_->Finish(&status_, &finish_tag_);
    return;
  }
  started_ = true;
  rw_->Read(&resp_, &read_tag_);
  WriteNext();
}

void WatchStream::OnWrite(bool ok) {
  writing_ = false;
  pending_.pop_front();
  if (!ok) {
    broken_ = true;  // the pending read fails too and finishes the stream
    return;
  }
  WriteNext();
}

void WatchStream::OnRead(bool ok) {
  if (!ok) {
    broken_ = true;
    rw_->Finish(&status_, &finish_tag_);
    return;
  }
  sink_->OnWatchResponse(index_, thread_, resp_);
  rw_->Read(&resp_, &read_tag_);
}

void WatchStream::OnFinish(bool) {
  const bool expected = engine_->stopping() && status_.error_code() == grpc::CANCELLED;
  if (!status_.ok() && !expected) engine_->stats(thread_, error_row_).Error(status_.error_code());
  engine_->DoneActive();
}

}  // namespace kvbench
