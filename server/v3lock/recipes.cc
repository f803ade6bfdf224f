#include "server/v3lock/recipes.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "server/apply/kv_apply.h"

namespace kvd::server::v3lock {

absl::Status ElectionNotLeader() { return absl::UnknownError("election: not leader"); }
absl::Status ElectionNoLeader() { return absl::UnknownError("election: no leader"); }
absl::Status SessionExpired() { return absl::UnknownError("mutex: session is expired"); }
absl::Status MissingLeaderKey() { return absl::UnknownError("\"leader\" field must be provided"); }
absl::Status LostWatcher() { return absl::UnknownError("lost watcher waiting for delete"); }

namespace {

// etcd's lock and election services reach the store through a clientv3 client, whose
// errors are plain Go errors to the gRPC server: the message stays, the code becomes
// Unknown. (e.g. a lease that does not exist: Unknown "etcdserver: requested lease not
// found", not NotFound.)
absl::Status AsClientError(absl::Status s) {
  if (s.ok()) return s;
  return absl::UnknownError(s.message());
}

}  // namespace

std::string SessionKey(const std::string& prefix, int64_t lease) {
  return absl::StrCat(prefix, absl::Hex(static_cast<uint64_t>(lease)));
}

// ---------------------------------------------------------------------------------------

Recipes::Watch::Watch(Recipes* recipes, WatchHandler handler)
    : recipes_(recipes), handler_(std::move(handler)), alive_(std::make_shared<bool>(true)) {}

Recipes::Watch::~Watch() {
  *alive_ = false;
  if (stream_ != nullptr) stream_->Close();  // no Send after this returns
}

void Recipes::Watch::Open(const std::string& key, const std::string& range_end, int64_t start_rev) {
  stream_ = recipes_->hub_->OpenStream(this, /*requires_leader=*/false);
  etcdserverpb::WatchRequest req;
  req.mutable_create_request()->set_key(key);
  req.mutable_create_request()->set_range_end(range_end);
  req.mutable_create_request()->set_start_revision(start_rev);
  stream_->Handle(req);
}

// Delivery thread: hand the response to the executor; the next one waits for it.
void Recipes::Watch::Send(const etcdserverpb::WatchResponse* resp) {
  recipes_->Post([this, alive = alive_, stream = stream_, resp = *resp] {
    if (!*alive) return;
    WatchHandler handler = handler_;  // the call may destroy *this
    handler(resp);
    stream->WriteDone();
  });
}

LeaseGranter ProposeLeaseGrant(Node* node, int64_t min_ttl_s) {
  return [node, min_ttl_s](int64_t ttl_s, LeaseDone done) {
    // A few tries: a random 63-bit id is taken only by a (very) unlucky draw.
    constexpr int kAttemptsMax = 4;
    struct Attempt {
      static void Run(Node* node, int64_t ttl_s, int attempts_left, LeaseDone done) {
        absl::BitGen bitgen;  // rare calls: a fresh seed each is cheap enough
        const int64_t id = absl::Uniform<int64_t>(bitgen, 1, std::numeric_limits<int64_t>::max());
        internalpb::Request proposal;
        proposal.mutable_lease_grant()->set_id(id);
        proposal.mutable_lease_grant()->set_ttl(ttl_s);
        auto resp = std::make_shared<etcdserverpb::LeaseGrantResponse>();
        node->Propose(
            std::move(proposal), resp.get(),
            [node, ttl_s, attempts_left, id, resp, done = std::move(done)](absl::Status s) mutable {
              if (s == errors::LeaseExists() && attempts_left > 1) {
                return Run(node, ttl_s, attempts_left - 1, std::move(done));
              }
              if (!s.ok()) return std::move(done)(std::move(s));
              std::move(done)(id);
            });
      }
    };
    Attempt::Run(node, std::max(ttl_s, min_ttl_s), kAttemptsMax, std::move(done));
  };
}

Recipes::Recipes(Node* node, watch::WatchHub* hub, LeaseGranter grant_lease)
    : node_(node),
      hub_(hub),
      grant_lease_(grant_lease ? std::move(grant_lease) : ProposeLeaseGrant(node, 0)) {
  thread_ = std::thread([this] { Loop(); });
}

Recipes::~Recipes() { Stop(); }

void Recipes::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Recipes::Post(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  tasks_.push_back(std::move(task));
}

void Recipes::Loop() {
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Recipes* r)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->stopping_ || !r->tasks_.empty(); },
          this));
      if (tasks_.empty()) return;  // stopping, and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

void Recipes::Txn(etcdserverpb::TxnRequest req, TxnDone done) {
  internalpb::Request proposal;
  *proposal.mutable_txn() = std::move(req);
  auto resp = std::make_shared<etcdserverpb::TxnResponse>();
  node_->Propose(std::move(proposal), resp.get(),
                 [this, resp, done = std::move(done)](absl::Status s) mutable {
                   if (s.ok()) node_->FillHeader(resp->mutable_header());
                   Post([s = std::move(s), resp, done = std::move(done)]() mutable {
                     if (!s.ok()) {
                       std::move(done)(AsClientError(std::move(s)));
                     } else {
                       std::move(done)(std::move(*resp));
                     }
                   });
                 });
}

void Recipes::Range(etcdserverpb::RangeRequest req, RangeDone done) {
  node_->ReadIndex([this, req = std::move(req), done = std::move(done)](absl::Status s) mutable {
    absl::StatusOr<etcdserverpb::RangeResponse> result = absl::UnknownError("unset");
    if (s.ok()) {
      std::unique_ptr<storage::mvcc::ReadTxn> view = node_->kv().Read();
      result = ApplyRange(*view, req);
      if (result.ok()) node_->FillHeader(result->mutable_header());
    } else {
      result = std::move(s);
    }
    if (!result.ok()) result = AsClientError(result.status());
    Post([result = std::move(result), done = std::move(done)]() mutable {
      std::move(done)(std::move(result));
    });
  });
}

void Recipes::GrantSessionLease(LeaseDone done) {
  grant_lease_(
      kSessionTtlSeconds, [this, done = std::move(done)](absl::StatusOr<int64_t> id) mutable {
        if (!id.ok()) id = AsClientError(id.status());
        Post([id = std::move(id), done = std::move(done)]() mutable { std::move(done)(id); });
      });
}

std::unique_ptr<Recipes::Watch> Recipes::NewWatch(const std::string& key,
                                                  const std::string& range_end, int64_t start_rev,
                                                  WatchHandler handler) {
  auto w = std::make_unique<Watch>(this, std::move(handler));
  w->Open(key, range_end, start_rev);
  return w;
}

// ---------------------------------------------------------------------------------------

std::shared_ptr<DeletesWaiter> DeletesWaiter::Start(Recipes* recipes, std::string prefix,
                                                    int64_t max_create_rev, Done done) {
  std::shared_ptr<DeletesWaiter> w(
      new DeletesWaiter(recipes, std::move(prefix), max_create_rev, std::move(done)));
  w->Step();
  return w;
}

void DeletesWaiter::Cancel() {
  finished_ = true;
  watch_.reset();
}

void DeletesWaiter::Finish(absl::Status s) {
  if (finished_) return;
  finished_ = true;
  watch_.reset();
  std::move(done_)(std::move(s));
}

void DeletesWaiter::Step() {
  // The newest key under the prefix created at or before max_create_rev_
  // (WithLastCreate + WithMaxCreateRev).
  etcdserverpb::RangeRequest req;
  req.set_key(prefix_);
  req.set_range_end(PrefixEnd(prefix_));
  req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  req.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  req.set_limit(1);
  req.set_max_create_revision(max_create_rev_);
  recipes_->Range(
      std::move(req), [self = shared_from_this()](absl::StatusOr<etcdserverpb::RangeResponse> r) {
        if (self->finished_) return;
        if (!r.ok()) return self->Finish(r.status());
        if (r->kvs().empty()) return self->Finish(absl::OkStatus());
        // Wait for that key's deletion, from the revision it was seen at.
        std::weak_ptr<DeletesWaiter> weak = self;
        self->watch_ = self->recipes_->NewWatch(r->kvs(0).key(), "", r->header().revision(),
                                                [weak](const etcdserverpb::WatchResponse& resp) {
                                                  std::shared_ptr<DeletesWaiter> w = weak.lock();
                                                  if (w == nullptr || w->finished_) return;
                                                  if (resp.canceled())
                                                    return w->Finish(LostWatcher());
                                                  for (const mvccpb::Event& e : resp.events()) {
                                                    if (e.type() == mvccpb::Event::DELETE) {
                                                      w->watch_.reset();
                                                      w->Step();
                                                      return;
                                                    }
                                                  }
                                                });
      });
}

}  // namespace kvd::server::v3lock
