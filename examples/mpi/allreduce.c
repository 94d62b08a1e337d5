/* allreduce: every rank adds its rank number; every rank prints the sum.
 * Build: mpicc -O2 -o allreduce allreduce.c
 * Run:   amlctl job submit --target cpu-cluster --node-count 2 \
 *            --process-count-per-node 2 --source . --wait -- ./allreduce
 * FAIL_RANK=R makes rank R exit 3 before the reduction;
 * SLEEP_SECONDS=S keeps the ranks alive S seconds after it. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int rank, size, sum = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *node = getenv("AML_NODE_RANK");
    printf("rank %d of %d started on node rank %s\n", rank, size, node ? node : "?");
    fflush(stdout);
    const char *fail = getenv("FAIL_RANK");
    if (fail && atoi(fail) == rank) {
        fprintf(stderr, "rank %d: failing on purpose with exit code 3\n", rank);
        exit(3);
    }
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("rank %d of %d: sum %d\n", rank, size, sum);
    fflush(stdout);
    const char *sl = getenv("SLEEP_SECONDS");
    if (sl)
        sleep(atoi(sl));
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
