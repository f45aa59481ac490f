// The one way results leave the process: whole files, replaced atomically.
//
// write_file_atomic writes a unique temporary beside the target
// (".<name>.tmp.XXXXXX"), fsyncs it, renames it over the target and fsyncs the
// folder, so a reader sees the old file or the new one, never a torn one, and
// concurrent writers leave one complete file (the last rename wins). The
// temporary is removed on any failure, and on SIGINT/SIGTERM while writing when
// the process has not installed its own handler for them.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

// InputError (one line naming the path) unless `path` can be written: its
// folder exists and is writable, no part of it is a regular file, and `path`
// is absent or a regular file. Commands call it before their long work.
void check_output_target(const std::string& path);

// InputError when `output` is the same file as one of `inputs` (hard links and
// different spellings included), so a command never overwrites what it reads.
void check_output_not_input(const std::string& output, const std::vector<std::string>& inputs);

// Replaces `path` with `content`. InputError when the target is not a regular
// file or its folder cannot take a file; moe::Error when writing fails.
void write_file_atomic(const std::string& path, std::string_view content);

// Same, with the content streamed by `write` (large outputs). An exception from
// `write` removes the temporary, leaves the target as it was and propagates.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// Runs `update` — a read-modify-write of `path` that replaces it with
// write_file_atomic — holding an exclusive flock on the lock file
// ".<name>.lock" beside it (created if missing, never removed: removing a lock
// file races with its next user). Concurrent updaters of one file (sharded
// tuners on one host, or on hosts sharing a filesystem that supports flock)
// take turns, so none loses another's change; a killed updater's lock is
// released with its process. moe::Error when the lock cannot be taken.
void update_file_locked(const std::string& path, const std::function<void()>& update);

}  // namespace moe
