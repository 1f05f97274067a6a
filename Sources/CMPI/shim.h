// OpenMPI's C interface (Debian: libopenmpi-dev) for Sources/Distributed. In OpenMPI's
// mpi.h the predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ...) are
// casts of opaque globals that Swift does not import: they are returned by the functions
// below instead.
#include <mpi.h>

static inline MPI_Comm braid_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype braid_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype braid_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype braid_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype braid_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op braid_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op braid_mpi_max(void) { return MPI_MAX; }
static inline void *braid_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler braid_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
