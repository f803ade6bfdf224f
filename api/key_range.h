// etcd's key-range conventions shared by every layer that builds requests (clientv3's
// GetPrefixRangeEnd): the range_end that makes [key, range_end) cover every key with a
// given prefix.
#ifndef KVD_API_KEY_RANGE_H_
#define KVD_API_KEY_RANGE_H_

#include <string>

namespace kvd::api {

// The smallest key greater than every key starting with prefix: prefix with its last byte
// below 0xff incremented and what follows dropped. "\0" (every key from the start key on)
// when there is no such byte, e.g. for an empty prefix.
inline std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

}  // namespace kvd::api

#endif  // KVD_API_KEY_RANGE_H_
