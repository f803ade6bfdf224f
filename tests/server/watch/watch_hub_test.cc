#include "server/watch/watch_hub.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "api/errors.h"
#include "gtest/gtest.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server::watch {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// Every wait in these tests is bounded by this (a hang is a failure, not a timeout).
constexpr absl::Duration kWait = absl::Seconds(20);

// Records every response. With `hold` set, writes are not completed until Release(), which
// models a client that stops reading.
class RecordingSink : public WatchSink {
 public:
  void Send(const WatchResponse* resp) override {
    bool hold;
    {
      absl::MutexLock lock(&mu_);
      responses_.push_back(*resp);
      hold = hold_;
      if (hold) held_ = true;
    }
    if (!hold) stream_->WriteDone();
  }
  void Abort(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    aborted_ = status;
  }

  void set_stream(WatchStream* stream) { stream_ = stream; }
  void Hold() {
    absl::MutexLock lock(&mu_);
    hold_ = true;
  }
  void Release() {
    bool was_held;
    {
      absl::MutexLock lock(&mu_);
      hold_ = false;
      was_held = held_;
      held_ = false;
    }
    if (was_held) stream_->WriteDone();
  }

  // Waits until pred(responses) holds; false after kWait.
  bool WaitFor(std::function<bool(const std::vector<WatchResponse>&)> pred) {
    absl::MutexLock lock(&mu_);
    pred_ = std::move(pred);
    bool ok = mu_.AwaitWithTimeout(absl::Condition(this, &RecordingSink::PredHolds), kWait);
    pred_ = nullptr;
    return ok;
  }
  bool WaitAborted() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(this, &RecordingSink::IsAborted), kWait);
  }
  std::vector<WatchResponse> responses() {
    absl::MutexLock lock(&mu_);
    return responses_;
  }
  absl::Status aborted() {
    absl::MutexLock lock(&mu_);
    return aborted_;
  }

 private:
  bool PredHolds() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred_(responses_); }
  bool IsAborted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !aborted_.ok(); }

  WatchStream* stream_ = nullptr;
  mutable absl::Mutex mu_;
  std::vector<WatchResponse> responses_;
  bool hold_ = false;
  bool held_ = false;
  absl::Status aborted_;
  std::function<bool(const std::vector<WatchResponse>&)> pred_;
};

// Events of one watcher, flattened.
std::vector<mvccpb::Event> EventsOf(const std::vector<WatchResponse>& rs, int64_t id) {
  std::vector<mvccpb::Event> out;
  for (const WatchResponse& r : rs) {
    if (r.watch_id() != id) continue;
    for (const mvccpb::Event& e : r.events()) out.push_back(e);
  }
  return out;
}

bool HasEventAt(const std::vector<WatchResponse>& rs, int64_t id, int64_t rev) {
  for (const mvccpb::Event& e : EventsOf(rs, id)) {
    if (e.kv().mod_revision() >= rev) return true;
  }
  return false;
}

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/watch_hub_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    storage::EngineOptions options;
    options.path = dir_;
    auto engine = storage::Engine::Open(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto kv = storage::mvcc::KvStore::Open(engine_.get());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
  }
  void TearDown() override {
    streams_.clear();
    if (hub_) hub_->Stop();
    hub_.reset();
    kv_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartHub(WatchHubOptions options = {}) {
    WatchHubEnv env;
    env.fill_header = [](etcdserverpb::ResponseHeader* h) { h->set_member_id(7); };
    env.has_leader = [this] { return has_leader_.load(); };
    hub_ = std::make_unique<WatchHub>(kv_.get(), options, env);
    hub_->Start();
  }

  // One stream with a recording sink.
  std::pair<WatchStream*, RecordingSink*> Open(bool requires_leader = false) {
    sinks_.push_back(std::make_unique<RecordingSink>());
    RecordingSink* sink = sinks_.back().get();
    streams_.push_back(hub_->OpenStream(sink, requires_leader));
    sink->set_stream(streams_.back().get());
    return {streams_.back().get(), sink};
  }

  // Applies one request (puts of every kv, then deletes) as the node would, and tells the
  // hub. Returns the revision.
  int64_t Apply(const std::vector<std::pair<std::string, std::string>>& puts,
                const std::vector<std::string>& deletes = {}) {
    auto batch = kv_->NewApplyBatch();
    batch->BeginTxn();
    for (const auto& [k, v] : puts) batch->Put(k, v, 0);
    for (const auto& k : deletes) batch->DeleteRange(storage::mvcc::KeyRange::Single(k));
    int64_t rev = batch->EndTxn();
    EXPECT_TRUE(batch->Commit(false).ok());
    if (hub_ && !hide_from_hub_) hub_->OnApplied(batch->rev(), batch->events());
    return rev;
  }
  int64_t Put(const std::string& k, const std::string& v) { return Apply({{k, v}}); }
  int64_t Delete(const std::string& k) { return Apply({}, {k}); }
  void Compact(int64_t rev) {
    auto batch = kv_->NewApplyBatch();
    ASSERT_TRUE(batch->Compact(rev).ok());
    ASSERT_TRUE(batch->Commit(false).ok());
  }

  static WatchRequest Create(const std::string& key, const std::string& end = "",
                             int64_t start = 0) {
    WatchRequest req;
    req.mutable_create_request()->set_key(key);
    req.mutable_create_request()->set_range_end(end);
    req.mutable_create_request()->set_start_revision(start);
    return req;
  }

  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
  std::unique_ptr<WatchHub> hub_;
  std::vector<std::unique_ptr<RecordingSink>> sinks_;
  std::vector<std::shared_ptr<WatchStream>> streams_;
  std::atomic<bool> has_leader_{true};
  // Applies without telling the hub (as when a raft snapshot is installed).
  bool hide_from_hub_ = false;
};

TEST_F(WatchHubTest, LiveEventsForKeyPrefixAndFromKey) {
  StartHub();
  auto [stream, sink] = Open();
  stream->Handle(Create("a"));                        // id 0: one key
  stream->Handle(Create("p/", "p0"));                 // id 1: prefix
  stream->Handle(Create("m", std::string("\0", 1)));  // id 2: from key
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return rs.size() >= 3; }));
  for (int i = 0; i < 3; ++i) {
    WatchResponse r = sink->responses()[i];
    EXPECT_TRUE(r.created());
    EXPECT_EQ(r.watch_id(), i);
    EXPECT_EQ(r.header().member_id(), 7u);
    EXPECT_EQ(r.header().revision(), 1);
  }
  Put("a", "1");    // 2: watcher 0
  Put("p/x", "1");  // 3: watchers 1, 2
  Put("b", "1");    // 4: nobody
  Put("ab", "1");   // 5: nobody (a is an exact-key watch)
  Put("zz", "1");   // 6: watcher 2
  Delete("a");      // 7: watcher 0
  ASSERT_TRUE(sink->WaitFor([](auto& rs) {
    return HasEventAt(rs, 0, 7) && HasEventAt(rs, 1, 3) && HasEventAt(rs, 2, 6);
  }));
  auto rs = sink->responses();
  auto revs = [&](int64_t id) {
    std::vector<int64_t> out;
    for (auto& e : EventsOf(rs, id)) out.push_back(e.kv().mod_revision());
    return out;
  };
  EXPECT_EQ(revs(0), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(revs(1), (std::vector<int64_t>{3}));
  EXPECT_EQ(revs(2), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(EventsOf(rs, 0)[1].type(), mvccpb::Event::DELETE);
}

TEST_F(WatchHubTest, HistoryThenLiveWithPrevKvAndFilters) {
  for (int i = 0; i < 5; ++i) Put("k", absl::StrCat(i));  // revs 2..6
  Delete("k");                                            // 7
  StartHub();
  auto [stream, sink] = Open();
  WatchRequest all = Create("k", "", 3);
  all.mutable_create_request()->set_prev_kv(true);
  stream->Handle(all);  // id 0
  WatchRequest noput = Create("k", "", 2);
  noput.mutable_create_request()->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  stream->Handle(noput);  // id 1
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return HasEventAt(rs, 0, 7); }));
  Put("k", "live");  // 8
  Delete("k");       // 9
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return HasEventAt(rs, 0, 9) && HasEventAt(rs, 1, 9); }));
  auto rs = sink->responses();
  std::vector<mvccpb::Event> all_events = EventsOf(rs, 0);
  ASSERT_EQ(all_events.size(), 7u);
  for (size_t i = 0; i < all_events.size(); ++i) {
    EXPECT_EQ(all_events[i].kv().mod_revision(), static_cast<int64_t>(3 + i));
  }
  EXPECT_EQ(all_events[0].prev_kv().value(), "0");  // rev 3's previous is rev 2
  EXPECT_EQ(all_events[4].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(all_events[4].prev_kv().value(), "4");
  EXPECT_FALSE(all_events[5].has_prev_kv());  // a create event has no previous version
  EXPECT_EQ(all_events[6].prev_kv().value(), "live");
  std::vector<mvccpb::Event> deletes = EventsOf(rs, 1);
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].kv().mod_revision(), 7);
  EXPECT_EQ(deletes[1].kv().mod_revision(), 9);
}

TEST_F(WatchHubTest, CompactedStartRevisionIsCreatedThenCanceled) {
  for (int i = 0; i < 4; ++i) Put("k", "v");  // 2..5
  Compact(4);
  StartHub();
  auto [stream, sink] = Open();
  stream->Handle(Create("k", "", 3));
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return rs.size() >= 2; }));
  auto rs = sink->responses();
  EXPECT_TRUE(rs[0].created());
  EXPECT_FALSE(rs[0].canceled());
  EXPECT_TRUE(rs[1].canceled());
  EXPECT_EQ(rs[1].compact_revision(), 4);
  EXPECT_EQ(rs[1].header().revision(), 0);  // as etcd
  EXPECT_EQ(rs[1].events_size(), 0);
}

TEST_F(WatchHubTest, FutureStartRevisionWaits) {
  StartHub();
  auto [stream, sink] = Open();
  stream->Handle(Create("f", "", 4));
  Put("f", "a");  // 2
  Put("f", "b");  // 3
  Put("f", "c");  // 4
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return HasEventAt(rs, 0, 4); }));
  auto events = EventsOf(sink->responses(), 0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv().value(), "c");
}

TEST_F(WatchHubTest, ClientWatchIdsDuplicatesEmptyRangeAndCancel) {
  StartHub();
  auto [stream, sink] = Open();
  WatchRequest mine = Create("x");
  mine.mutable_create_request()->set_watch_id(5);
  stream->Handle(mine);
  stream->Handle(mine);              // duplicate
  stream->Handle(Create("b", "a"));  // empty range
  stream->Handle(Create("y"));       // auto id 0
  WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(5);
  stream->Handle(cancel);
  cancel.mutable_cancel_request()->set_watch_id(42);  // unknown: no answer
  stream->Handle(cancel);
  Put("x", "after cancel");
  Put("y", "1");
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return HasEventAt(rs, 0, 3); }));
  auto rs = sink->responses();
  ASSERT_EQ(rs.size(), 6u);
  EXPECT_TRUE(rs[0].created());
  EXPECT_EQ(rs[0].watch_id(), 5);
  EXPECT_TRUE(rs[1].created() && rs[1].canceled());
  EXPECT_EQ(rs[1].watch_id(), -1);
  EXPECT_EQ(rs[1].cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  EXPECT_TRUE(rs[2].created() && rs[2].canceled());
  EXPECT_EQ(rs[2].cancel_reason(), "mvcc: watcher range is empty");
  EXPECT_TRUE(rs[3].created());
  EXPECT_EQ(rs[3].watch_id(), 0);
  EXPECT_TRUE(rs[4].canceled());
  EXPECT_EQ(rs[4].watch_id(), 5);
  EXPECT_EQ(rs[5].watch_id(), 0);
  EXPECT_EQ(rs[5].events_size(), 1);
  EXPECT_TRUE(EventsOf(rs, 5).empty());
}

// A consumer that stops reading overflows its buffer and is later served from storage:
// every event arrives exactly once, in order, and the writer never waits for it.
TEST_F(WatchHubTest, SlowConsumerCatchesUpFromStorage) {
  WatchHubOptions options;
  options.watcher_pending_events_max = 16;
  options.catch_up_chunk_events = 7;
  options.response_events_max = 5;
  StartHub(options);
  auto [slow, slow_sink] = Open();
  auto [fast, fast_sink] = Open();
  slow->Handle(Create("k/", "k0"));
  fast->Handle(Create("k/", "k0"));
  ASSERT_TRUE(slow_sink->WaitFor([](auto& rs) { return rs.size() == 1; }));
  slow_sink->Hold();
  constexpr int kWrites = 300;
  int64_t last = 0;
  for (int i = 0; i < kWrites; ++i) {
    last = Apply({{absl::StrCat("k/", i % 10), absl::StrCat(i)}, {"other", "x"}});
  }
  ASSERT_TRUE(fast_sink->WaitFor([&](auto& rs) { return HasEventAt(rs, 0, last); }));
  slow_sink->Release();
  ASSERT_TRUE(slow_sink->WaitFor([&](auto& rs) { return HasEventAt(rs, 0, last); }));
  for (RecordingSink* sink : {slow_sink, fast_sink}) {
    std::vector<mvccpb::Event> events = EventsOf(sink->responses(), 0);
    ASSERT_EQ(events.size(), static_cast<size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) {
      EXPECT_EQ(events[i].kv().mod_revision(), 2 + i);
      EXPECT_EQ(events[i].kv().value(), absl::StrCat(i));
    }
  }
}

// Watchers created from past revisions while a writer runs: no event lost or repeated
// across the switch from catch-up to live delivery.
TEST_F(WatchHubTest, CatchUpRacingWritesNeverSkipsOrDuplicates) {
  WatchHubOptions options;
  options.catch_up_chunk_events = 3;
  StartHub(options);
  for (int i = 0; i < 50; ++i) Put("r", absl::StrCat(i));  // 2..51
  auto [stream, sink] = Open();
  std::atomic<int64_t> last{0};
  std::thread writer([&] {
    for (int i = 50; i < 400; ++i) last = Put("r", absl::StrCat(i));
  });
  for (int w = 0; w < 8; ++w) stream->Handle(Create("r", "", 2 + w * 5));
  writer.join();
  const int64_t final_rev = last.load();
  ASSERT_TRUE(sink->WaitFor([&](auto& rs) {
    for (int w = 0; w < 8; ++w) {
      if (!HasEventAt(rs, w, final_rev)) return false;
    }
    return true;
  }));
  auto rs = sink->responses();
  for (int w = 0; w < 8; ++w) {
    std::vector<mvccpb::Event> events = EventsOf(rs, w);
    int64_t start = 2 + w * 5;
    ASSERT_EQ(events.size(), static_cast<size_t>(final_rev - start + 1)) << "watcher " << w;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].kv().mod_revision(), start + static_cast<int64_t>(i));
    }
  }
}

// A follower that installs a raft snapshot jumps revisions without their events: synced
// watchers read the skipped revisions from storage (etcd's watchable store Restore).
TEST_F(WatchHubTest, SkippedRevisionsAreReadFromStorage) {
  StartHub();
  auto [stream, sink] = Open();
  stream->Handle(Create("s/", "s0"));
  int64_t first = Put("s/a", "1");
  ASSERT_TRUE(sink->WaitFor([&](auto& rs) { return HasEventAt(rs, 0, first); }));
  hide_from_hub_ = true;
  for (int i = 0; i < 5; ++i) Put("s/b", absl::StrCat(i));
  hide_from_hub_ = false;
  int64_t last = Put("s/c", "x");
  ASSERT_TRUE(sink->WaitFor([&](auto& rs) { return HasEventAt(rs, 0, last); }));
  std::vector<mvccpb::Event> events = EventsOf(sink->responses(), 0);
  ASSERT_EQ(events.size(), 7u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv().mod_revision(), first + static_cast<int64_t>(i));
  }
}

TEST_F(WatchHubTest, OneRevisionIsOneResponse) {
  StartHub();
  auto [stream, sink] = Open();
  stream->Handle(Create("t/", "t0"));
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return rs.size() == 1; }));
  int64_t rev = Apply({{"t/a", "1"}, {"t/b", "2"}, {"t/c", "3"}});
  ASSERT_TRUE(sink->WaitFor([&](auto& rs) { return HasEventAt(rs, 0, rev); }));
  auto rs = sink->responses();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].events_size(), 3);
  EXPECT_EQ(rs[1].header().revision(), rev);
}

TEST_F(WatchHubTest, LargeResponsesAreFragmentedOnRequest) {
  WatchHubOptions options;
  options.max_request_bytes = 1000;
  StartHub(options);
  auto [stream, sink] = Open();
  WatchRequest frag = Create("big/", "big0");
  frag.mutable_create_request()->set_fragment(true);
  stream->Handle(frag);                    // id 0
  stream->Handle(Create("big/", "big0"));  // id 1: no fragments
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return rs.size() == 2; }));
  std::vector<std::pair<std::string, std::string>> puts;
  for (int i = 0; i < 10; ++i) puts.push_back({absl::StrCat("big/", i), std::string(300, 'v')});
  int64_t rev = Apply(puts);
  // Every event has revision rev, so the first fragment already has one: wait for the last.
  ASSERT_TRUE(sink->WaitFor([&](auto& rs) {
    bool last_fragment = false;
    for (const WatchResponse& r : rs) {
      if (r.watch_id() == 0 && r.events_size() > 0 && !r.fragment()) last_fragment = true;
    }
    return last_fragment && HasEventAt(rs, 1, rev);
  }));
  std::vector<WatchResponse> parts;
  for (const WatchResponse& r : sink->responses()) {
    if (r.watch_id() == 0 && r.events_size() > 0) parts.push_back(r);
  }
  ASSERT_GT(parts.size(), 1u);
  int events = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].fragment(), i + 1 < parts.size());
    events += parts[i].events_size();
  }
  EXPECT_EQ(events, 10);
  EXPECT_EQ(EventsOf(sink->responses(), 1).size(), 10u);
}

TEST_F(WatchHubTest, ProgressRequestFollowsEvents) {
  StartHub();
  auto [stream, sink] = Open();
  stream->Handle(Create("q"));
  int64_t rev = 0;
  for (int i = 0; i < 20; ++i) rev = Put("q", "v");
  WatchRequest progress;
  progress.mutable_progress_request();
  stream->Handle(progress);
  ASSERT_TRUE(sink->WaitFor([](auto& rs) {
    for (auto& r : rs) {
      if (r.watch_id() == -1) return true;
    }
    return false;
  }));
  // Nothing the notification reports is delivered after it.
  auto rs = sink->responses();
  int64_t reported = 0;
  int64_t delivered_before = 0;
  for (auto& r : rs) {
    if (r.watch_id() == -1) {
      reported = r.header().revision();
      break;
    }
    for (auto& e : r.events()) delivered_before = e.kv().mod_revision();
  }
  EXPECT_GE(reported, delivered_before);
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].watch_id() == -1) continue;
    for (auto& e : rs[i].events()) {
      if (e.kv().mod_revision() <= reported) {
        EXPECT_LE(e.kv().mod_revision(), delivered_before) << "event after its progress";
      }
    }
  }
  EXPECT_LE(reported, rev);
}

TEST_F(WatchHubTest, ProgressRequestIsAnsweredInRequestOrderWhenNothingIsPending) {
  StartHub();
  const int64_t rev = Put("r", "1");
  for (int i = 0; i < 1000 && hub_->dispatched_rev() < rev; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  auto [stream, sink] = Open();
  WatchRequest progress;
  progress.mutable_progress_request();
  // On an empty stream, then with a synced idle watcher: each answer comes in the order
  // of the requests (as etcd answers them), with the current revision.
  stream->Handle(progress);
  stream->Handle(Create("r"));
  stream->Handle(progress);
  stream->Handle(Create("s"));
  ASSERT_TRUE(sink->WaitFor([](auto& rs) { return rs.size() >= 4; }));
  auto rs = sink->responses();
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].watch_id(), -1);
  EXPECT_EQ(rs[0].header().revision(), rev);
  EXPECT_TRUE(rs[1].created());
  EXPECT_EQ(rs[1].watch_id(), 0);
  EXPECT_EQ(rs[2].watch_id(), -1);
  EXPECT_EQ(rs[2].header().revision(), rev);
  EXPECT_TRUE(rs[3].created());
  EXPECT_EQ(rs[3].watch_id(), 1);
}

TEST_F(WatchHubTest, PeriodicProgressNotifyForIdleWatchers) {
  WatchHubOptions options;
  options.progress_notify_interval = absl::Milliseconds(20);
  StartHub(options);
  int64_t rev = Put("p", "1");
  auto [stream, sink] = Open();
  WatchRequest req = Create("p");
  req.mutable_create_request()->set_progress_notify(true);
  stream->Handle(req);
  stream->Handle(Create("other"));  // id 1: did not ask
  ASSERT_TRUE(sink->WaitFor([](auto& rs) {
    return rs.size() >= 3 && rs.back().events_size() == 0 && !rs.back().created();
  }));
  for (const WatchResponse& r : sink->responses()) {
    if (r.created()) continue;
    EXPECT_EQ(r.watch_id(), 0);
    EXPECT_EQ(r.header().revision(), rev);
  }
}

TEST_F(WatchHubTest, StreamsRequiringALeaderAreAbortedWithoutOne) {
  WatchHubOptions options;
  options.leader_check_interval = absl::Milliseconds(5);
  StartHub(options);
  auto [plain, plain_sink] = Open(false);
  auto [strict, strict_sink] = Open(true);
  has_leader_ = false;
  ASSERT_TRUE(strict_sink->WaitAborted());
  EXPECT_EQ(strict_sink->aborted(), errors::NoLeader());
  EXPECT_TRUE(plain_sink->aborted().ok());
}

}  // namespace
}  // namespace kvd::server::watch
