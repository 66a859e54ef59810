/* The one place where a host errno becomes an NBD error value. */
#include "nbd/proto.h"

#include <errno.h>

uint32_t nbd_errmap(int neg_errno)
{
        switch (-neg_errno) {
        case 0:
                return 0;
        case EPERM:
        case EROFS:
        case EACCES:
                return NBD_EPERM;
        case EINVAL:
        case ERANGE:
                return NBD_EINVAL;
        case ENOSPC:
        case EDQUOT:
        case EFBIG:
                return NBD_ENOSPC;
        case ENOMEM:
                return NBD_ENOMEM;
        case EOVERFLOW:
                return NBD_EOVERFLOW;
        case ENOTSUP:
                return NBD_ENOTSUP;
        case ESHUTDOWN:
                return NBD_ESHUTDOWN;
        default:
                /* Everything else the volume or a replication link can
                 * report (EIO, ENODEV, ETIMEDOUT, ECONNRESET...) is a failed
                 * I/O as far as the client can act on it. */
                return NBD_EIO;
        }
}
