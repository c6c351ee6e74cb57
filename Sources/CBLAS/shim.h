// CBLAS from OpenBLAS (Debian's libopenblas-dev); its pkg-config file supplies the include path.
#include <cblas.h>
