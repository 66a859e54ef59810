/* evsrepd entry point (placeholder until the services are wired in). */
#include <stdio.h>

int main(void)
{
        fprintf(stderr, "evsrepd: not yet wired\n");
        return 1;
}
