// BankService: verdict-bank's HTTP business API (CONTRACT.md "verdict-bank
// business API") plus GET /healthz, mounted on the same httplib server as the
// participant protocol.
//
//   POST /accounts {"id":S,"balance":N}   201 | 409 account_exists | 400
//   GET  /accounts/{id}                   200 {"id","balance"} (committed) | 404
//   POST /accounts/{id}/apply {"delta":N} + header Verdict-Txn-Id
//        200 staged and enlisted
//        409 insufficient_funds | lock_timeout   the txn is doomed here: its
//            work on this service is undone and it will vote no
//        409 txn_not_active   the txn is prepared/finished here, or the
//            coordinator refused enlistment (work undone)
//        503 coordinator_unavailable            enlistment failed (work undone)
//        400 missing/invalid header or body; 404 unknown account
//   GET  /healthz                         200 {"status":"ok"}
//
// Balances and deltas are JSON integers (int64); anything else is 400.
// Thread-safety: handlers run concurrently; the store and participant are
// thread-safe.
#pragma once

#include <httplib.h>

#include "bank_store.h"
#include "verdict/participant/participant.h"

namespace verdict::bank {

class BankService {
 public:
  // `store` and `participant` must outlive the service (and the server).
  BankService(BankStore* store, participant::Participant* participant)
      : store_(store), participant_(participant) {}

  void Mount(httplib::Server& server);

 private:
  void HandleCreate(const httplib::Request& req, httplib::Response& res);
  void HandleGet(const httplib::Request& req, httplib::Response& res);
  void HandleApply(const httplib::Request& req, httplib::Response& res);

  BankStore* store_;
  participant::Participant* participant_;
};

}  // namespace verdict::bank
