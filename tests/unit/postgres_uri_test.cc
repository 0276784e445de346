// UriWithDatabase (tests/support/postgres_cluster.h): pure string handling, no server.
#include <gtest/gtest.h>

#include "support/postgres_cluster.h"

namespace verdict::testing {
namespace {

TEST(UriWithDatabaseTest, ReplacesThePathOfAUri) {
  EXPECT_EQ(UriWithDatabase("postgresql://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgresql://postgres@127.0.0.1:5432/t1");
  EXPECT_EQ(UriWithDatabase("postgres://u:p@h:1/db?sslmode=disable&connect_timeout=3", "t2"),
            "postgres://u:p@h:1/t2?sslmode=disable&connect_timeout=3");
  EXPECT_EQ(UriWithDatabase("postgresql://h:1", "t3"), "postgresql://h:1/t3");
  EXPECT_EQ(UriWithDatabase("postgresql://h:1?sslmode=disable", "t4"),
            "postgresql://h:1/t4?sslmode=disable");
}

TEST(UriWithDatabaseTest, AppendsDbnameToKeywordForm) {
  // libpq lets a later keyword override an earlier one.
  EXPECT_EQ(UriWithDatabase("host=/tmp port=5 dbname=postgres", "t5"),
            "host=/tmp port=5 dbname=postgres dbname=t5");
}

}  // namespace
}  // namespace verdict::testing
